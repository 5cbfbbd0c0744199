--[[
  hold.lua: hold the requested seats for a buyer, all or nothing, adding them
  to the buyer's hold for this event (one hold per buyer, like a cart: it keeps
  its expiry). Seats the buyer already holds count as granted, so a request
  retried after a lost reply neither holds twice nor fails for its own seats.
  A seat whose hold is past expiry is free here whether or not the sweeper has
  run. Changes (including holds expired on the way) become one stream entry.

  KEYS[1] state   KEYS[2] seats   KEYS[3] holds   KEYS[4] buyers
  KEYS[5] expiry  KEYS[6] owned   KEYS[7] stream
  ARGV[1] buyer id
  ARGV[2] hold id to use if the buyer has no live hold
  ARGV[3] hold life in ms
  ARGV[4] max seats per buyer (held + owned)
  ARGV[5] stream maxlen
  ARGV[6..] seat ids (distinct, known to exist: checked by the caller)

  Replies:
    {'ok', hold_id, expires_ms, version, '', n, seat1..seatn, picked...}
                                  all n seats of the hold, then the ones added now
    {'unavailable', version, seat...}                   seats held/booked by others
    {'limit', version, held, owned, requested_new}      would exceed max seats
    {'no_event'}                                        the event has no live state
]]
local K_state, K_seats, K_holds, K_buyers = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_expiry, K_owned, K_stream = KEYS[5], KEYS[6], KEYS[7]
local buyer, new_hold_id = ARGV[1], ARGV[2]
local hold_ms, max_seats = tonumber(ARGV[3]), tonumber(ARGV[4])
local stream_maxlen = ARGV[5]
local FIRST_SEAT = 6

--- @include "event"
--- @include "grant"

if not event_exists() then return { 'no_event' } end
local changes = {}
local now = now_ms()
expire_due(now, 100, changes)

local hold_id, hold = buyer_hold(buyer, now, changes)
local mine = 'h' .. (hold_id or '')
local wanted, taken = {}, {}
local owners = redis.call('HMGET', K_seats, unpack(ARGV, FIRST_SEAT))
for i = FIRST_SEAT, #ARGV do
  local seat = ARGV[i]
  local owner = owners[i - FIRST_SEAT + 1]
  if owner == mine then
    -- already ours: a retry or an overlapping request
  elseif not owner then
    table.insert(wanted, seat)
  elseif string.sub(owner, 1, 1) == 'h' and not live_hold_of_owner(owner, now, changes) then
    table.insert(wanted, seat)
  else
    table.insert(taken, seat)
  end
end

if #taken > 0 then
  local reply = { 'unavailable', emit(changes) }
  for _, seat in ipairs(taken) do table.insert(reply, seat) end
  return reply
end

local room, held, owned = room_left(buyer, hold, max_seats)
if #wanted > room then
  return { 'limit', emit(changes), held, owned, #wanted }
end

if #wanted > 0 then
  hold_id, hold = grant(buyer, hold_id, hold, new_hold_id, hold_ms, now, wanted, changes)
end
if not hold then
  -- nothing requested that we do not already hold and no hold: cannot happen
  -- with a non-empty request, but answer sanely
  return { 'unavailable', emit(changes) }
end
return granted_reply(hold_id, hold, emit(changes), '', wanted)
