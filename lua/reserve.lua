--[[
  reserve.lua: move a hold's seats into a checkout reservation for an order
  ("r<order_id>"), ending the hold. The seats stay unavailable to others (they
  show as held) until the order is booked or freed; the order's expiry is kept
  in Postgres, not here. Idempotent: seats already reserved for this order
  count as done, so a checkout retried after a crash completes.

  KEYS[1] state   KEYS[2] seats   KEYS[3] holds   KEYS[4] buyers
  KEYS[5] expiry  KEYS[6] owned   KEYS[7] stream
  ARGV[1] buyer id
  ARGV[2] hold id
  ARGV[3] order id
  ARGV[4] stream maxlen
  ARGV[5..] the order's seat ids

  Replies:
    {'ok', version}
    {'not_held', version, seat...}   seats neither in the live hold nor reserved for the order
    {'no_event'}
]]
local K_state, K_seats, K_holds, K_buyers = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_expiry, K_owned, K_stream = KEYS[5], KEYS[6], KEYS[7]
local buyer, hold_id, order_id, stream_maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local FIRST_SEAT = 5

--- @include "event"

if not event_exists() then return { 'no_event' } end
local changes = {}
local now = now_ms()
expire_due(now, 100, changes)

local live_id, hold = live_hold_of_owner('h' .. hold_id, now, changes)
if live_id and hold.b ~= buyer then live_id, hold = nil, nil end
local held_by_hold, reserved = 'h' .. hold_id, 'r' .. order_id
local missing = {}
for i = FIRST_SEAT, #ARGV do
  local owner = redis.call('HGET', K_seats, ARGV[i])
  if owner ~= reserved and not (live_id and owner == held_by_hold) then
    table.insert(missing, ARGV[i])
  end
end
if #missing > 0 then
  local reply = { 'not_held', emit(changes) }
  for _, seat in ipairs(missing) do table.insert(reply, seat) end
  return reply
end

local moved = 0
for i = FIRST_SEAT, #ARGV do
  if redis.call('HGET', K_seats, ARGV[i]) == held_by_hold then
    redis.call('HSET', K_seats, ARGV[i], reserved)
    changes[ARGV[i]] = 'held'
    moved = moved + 1
  end
end
if moved > 0 then redis.call('HINCRBY', K_owned, buyer, moved) end
if live_id then
  -- Seats of the hold outside the order (none, normally) go back on sale.
  drop_hold(hold_id, hold, changes)
end
return { 'ok', emit(changes) }
