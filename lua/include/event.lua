--[[
  Shared by every script that changes an event's seats (spliced in by
  server/scripts.py where a script says `--- @include "event"`).

  Expects these locals, bound by the including script from KEYS/ARGV:
    K_state   hash   epoch, version
    K_seats   hash   seat id -> owner: "h<hold_id>" held, "r<order_id>" reserved
                      for a checkout, "b<order_id>" booked; absent = available
    K_holds   hash   hold id -> cjson {b=buyer, x=expires_ms, s=[seats], q={request_id=[seats]}}
    K_buyers  hash   buyer id -> its live hold id
    K_expiry  zset   hold id scored by expires_ms
    K_stream  stream one entry per version: id "<version>-0", fields e=epoch,
                      c=cjson changes, t=Redis time of the change (ms)
    stream_maxlen    approximate length the stream is trimmed to
]]

-- Effects replication keeps TIME-dependent writes deterministic on replicas
-- (a no-op on Redis 7, needed on 6.2).
redis.replicate_commands()

-- Redis's clock, read once per script call: one instant for the whole change.
local clock_ms = nil
local function now_ms()
  if not clock_ms then
    local t = redis.call('TIME')
    clock_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return clock_ms
end

local function public_state(owner)
  if not owner then return 'available' end
  local kind = string.sub(owner, 1, 1)
  if kind == 'b' then return 'booked' end
  return 'held'
end

local function load_hold(hold_id)
  local raw = redis.call('HGET', K_holds, hold_id)
  if not raw then return nil end
  return cjson.decode(raw)
end

local function save_hold(hold_id, hold)
  redis.call('HSET', K_holds, hold_id, cjson.encode(hold))
end

-- Frees every seat the hold still owns and forgets the hold.
local function drop_hold(hold_id, hold, changes)
  local owner = 'h' .. hold_id
  if #hold.s > 0 then
    local owners = redis.call('HMGET', K_seats, unpack(hold.s))
    local freed = {}
    for i, seat in ipairs(hold.s) do
      if owners[i] == owner then
        table.insert(freed, seat)
        changes[seat] = 'available'
      end
    end
    if #freed > 0 then redis.call('HDEL', K_seats, unpack(freed)) end
  end
  redis.call('HDEL', K_holds, hold_id)
  redis.call('ZREM', K_expiry, hold_id)
  if redis.call('HGET', K_buyers, hold.b) == hold_id then
    redis.call('HDEL', K_buyers, hold.b)
  end
end

-- Expires holds whose time has come, at most `limit` of them; returns how many.
local function expire_due(now, limit, changes)
  local due = redis.call('ZRANGEBYSCORE', K_expiry, '-inf', now, 'LIMIT', 0, limit)
  for _, hold_id in ipairs(due) do
    local hold = load_hold(hold_id)
    if hold then
      drop_hold(hold_id, hold, changes)
    else
      redis.call('ZREM', K_expiry, hold_id)
    end
  end
  return #due
end

-- The live hold of `owner` ("h<hold_id>") or nil when it is gone or past its
-- expiry; an expired one is dropped on the spot, so correctness never waits
-- for the sweeper.
local function live_hold_of_owner(owner, now, changes)
  local hold_id = string.sub(owner, 2)
  local hold = load_hold(hold_id)
  if hold and hold.x > now then return hold_id, hold end
  if hold then drop_hold(hold_id, hold, changes) end
  return nil, nil
end

local event_epoch = nil  -- set by event_exists()

-- Appends the changes as the next version; returns the version (or the
-- current one when nothing changed).
local function emit(changes)
  if next(changes) == nil then
    return tonumber(redis.call('HGET', K_state, 'version'))
  end
  local version = redis.call('HINCRBY', K_state, 'version', 1)
  redis.call('XADD', K_stream, 'MAXLEN', '~', stream_maxlen, version .. '-0',
    'e', event_epoch or redis.call('HGET', K_state, 'epoch'), 'c', cjson.encode(changes), 't', now_ms())
  return version
end

-- Whether the event has live state; keeps its epoch for emit().
local function event_exists()
  event_epoch = redis.call('HGET', K_state, 'epoch')
  return event_epoch ~= false
end
