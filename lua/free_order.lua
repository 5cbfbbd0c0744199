--[[
  free_order.lua: put an order's seats back on sale (its checkout lapsed, it
  was cancelled, or fully refunded). Only seats this order still reserves or
  owns are freed, so it is idempotent and never touches a seat that has since
  gone to someone else.

  KEYS[1] state   KEYS[2] seats   KEYS[3] owned   KEYS[4] stream
  ARGV[1] buyer id
  ARGV[2] order id
  ARGV[3] stream maxlen
  ARGV[4..] the order's seat ids

  Replies:
    {'ok', version, freed_count}
    {'no_event'}
]]
local K_state, K_seats, K_owned, K_stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local buyer, order_id, stream_maxlen = ARGV[1], ARGV[2], ARGV[3]
local FIRST_SEAT = 4

--- @include "event"

if not event_exists() then return { 'no_event' } end
local changes = {}
local reserved, booked = 'r' .. order_id, 'b' .. order_id
local freed = 0
for i = FIRST_SEAT, #ARGV do
  local owner = redis.call('HGET', K_seats, ARGV[i])
  if owner == reserved or owner == booked then
    redis.call('HDEL', K_seats, ARGV[i])
    changes[ARGV[i]] = 'available'
    freed = freed + 1
  end
end
if freed > 0 then
  local left = redis.call('HINCRBY', K_owned, buyer, -freed)
  if left <= 0 then redis.call('HDEL', K_owned, buyer) end
end
return { 'ok', emit(changes), freed }
