--[[
  book.lua: book an order's seats ("b<order_id>"), all or nothing. A seat may
  be booked if it is free, reserved for this order, already booked by it, or
  held by a hold past its expiry; a seat anyone else holds, reserves or owns
  refuses the whole booking. Idempotent.

  KEYS[1] state   KEYS[2] seats   KEYS[3] holds   KEYS[4] buyers
  KEYS[5] expiry  KEYS[6] owned   KEYS[7] stream
  ARGV[1] buyer id
  ARGV[2] order id
  ARGV[3] stream maxlen
  ARGV[4..] the order's seat ids

  Replies:
    {'ok', version}
    {'taken', version, seat...}   seats someone else has: nothing booked
    {'no_event'}
]]
local K_state, K_seats, K_holds, K_buyers = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_expiry, K_owned, K_stream = KEYS[5], KEYS[6], KEYS[7]
local buyer, order_id, stream_maxlen = ARGV[1], ARGV[2], ARGV[3]
local FIRST_SEAT = 4

--- @include "event"

if not event_exists() then return { 'no_event' } end
local changes = {}
local now = now_ms()
expire_due(now, 100, changes)

local reserved, booked = 'r' .. order_id, 'b' .. order_id
local taken = {}
for i = FIRST_SEAT, #ARGV do
  local owner = redis.call('HGET', K_seats, ARGV[i])
  if owner and owner ~= reserved and owner ~= booked then
    if string.sub(owner, 1, 1) ~= 'h' or live_hold_of_owner(owner, now, changes) then
      table.insert(taken, ARGV[i])
    end
  end
end
if #taken > 0 then
  local reply = { 'taken', emit(changes) }
  for _, seat in ipairs(taken) do table.insert(reply, seat) end
  return reply
end

local newly_owned = 0
for i = FIRST_SEAT, #ARGV do
  local owner = redis.call('HGET', K_seats, ARGV[i])
  if owner ~= booked then
    if owner ~= reserved then newly_owned = newly_owned + 1 end
    redis.call('HSET', K_seats, ARGV[i], booked)
    changes[ARGV[i]] = 'booked'
  end
end
if newly_owned > 0 then redis.call('HINCRBY', K_owned, buyer, newly_owned) end
return { 'ok', emit(changes) }
