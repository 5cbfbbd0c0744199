--[[
  init_event.lua: give an event its live state, unless it already has one:
  a new epoch at version 0, its seat layout for best_available.lua, and the
  seats that orders own (reserved for a checkout or booked), as Postgres
  records them. Used when an event is created and to rebuild an event after
  Redis lost its data; the "only if absent" test makes concurrent rebuilds by
  several server processes safe (the first wins, the others see 'exists').

  KEYS[1] state  KEYS[2] seats  KEYS[3] holds  KEYS[4] buyers
  KEYS[5] expiry KEYS[6] owned  KEYS[7] stream KEYS[8] layout
  ARGV[1] epoch
  ARGV[2] number of layout rows R
  ARGV[3] layout meta (msgpack)
  ARGV[4 .. 3+R] layout rows 1..R (msgpack)
  ARGV[4+R] number of owned seats S
  then S pairs: seat id, owner ("r<order_id>" or "b<order_id>")
  then pairs: buyer id, seats owned by that buyer

  Replies:
    {'created', epoch}
    {'exists', epoch}    live state was already there; nothing changed
]]
local K_state, K_seats, K_holds, K_buyers = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_expiry, K_owned, K_stream, K_layout = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local epoch, rows = ARGV[1], tonumber(ARGV[2])

local existing = redis.call('HGET', K_state, 'epoch')
if existing then return { 'exists', existing } end

-- Whatever is left of an earlier life of this event is stale without its state.
redis.call('DEL', K_seats, K_holds, K_buyers, K_expiry, K_owned, K_stream, K_layout)

redis.call('HSET', K_layout, 'meta', ARGV[3])
for i = 1, rows do
  redis.call('HSET', K_layout, 'r' .. i, ARGV[3 + i])
end

local at = 4 + rows
local owned_seats = tonumber(ARGV[at])
for k = 1, owned_seats do
  redis.call('HSET', K_seats, ARGV[at + 2 * k - 1], ARGV[at + 2 * k])
end
at = at + 2 * owned_seats + 1
while at < #ARGV do
  redis.call('HSET', K_owned, ARGV[at], ARGV[at + 1])
  at = at + 2
end

redis.call('HSET', K_state, 'epoch', epoch, 'version', 0)
return { 'created', epoch }
