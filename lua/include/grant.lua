--[[
  Shared by hold.lua and best_available.lua (needs include "event" first):
  adds free seats to the buyer's hold (a cart), creating the hold if the buyer
  has none, within the per-buyer limit. Extra locals it expects:
    K_owned  hash  buyer id -> seats the buyer owns through orders (reserved or booked)
]]

-- The buyer's live hold (id, record), or nil when none is live.
local function buyer_hold(buyer, now, changes)
  local hold_id = redis.call('HGET', K_buyers, buyer)
  if not hold_id then return nil, nil end
  local live_id, hold = live_hold_of_owner('h' .. hold_id, now, changes)
  if not live_id then redis.call('HDEL', K_buyers, buyer) end
  return live_id, hold
end

-- How many seats the buyer may still take: max minus held minus owned.
local function room_left(buyer, hold, max_seats)
  local owned = tonumber(redis.call('HGET', K_owned, buyer) or '0')
  local held = 0
  if hold then held = #hold.s end
  return max_seats - held - owned, held, owned
end

-- Grants `seats` (all free, none already the buyer's) to the buyer's hold.
-- Returns hold id and record.
local function grant(buyer, hold_id, hold, new_hold_id, hold_ms, now, seats, changes)
  if not hold then
    hold_id = new_hold_id
    hold = { b = buyer, x = now + hold_ms, s = {}, q = {} }
    redis.call('HSET', K_buyers, buyer, hold_id)
    redis.call('ZADD', K_expiry, hold.x, hold_id)
  end
  local owner = 'h' .. hold_id
  local pairs_ = {}
  for _, seat in ipairs(seats) do
    table.insert(pairs_, seat)
    table.insert(pairs_, owner)
    table.insert(hold.s, seat)
    changes[seat] = 'held'
  end
  redis.call('HSET', K_seats, unpack(pairs_))
  save_hold(hold_id, hold)
  return hold_id, hold
end

-- The reply of a granted hold:
-- {'ok', hold_id, expires_ms, version, adjacent, #seats, seat..., picked...}
-- where seats are all seats of the hold and picked the ones this request added.
local function granted_reply(hold_id, hold, version, adjacent, picked)
  local reply = { 'ok', hold_id, hold.x, version, adjacent, #hold.s }
  for _, seat in ipairs(hold.s) do table.insert(reply, seat) end
  for _, seat in ipairs(picked) do table.insert(reply, seat) end
  return reply
end
