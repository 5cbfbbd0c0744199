--[[
  release.lua: a buyer gives back some or all seats of its hold. Releasing the
  last seat ends the hold. A hold past its expiry is gone (not found), exactly
  as if the sweeper had already freed it.

  KEYS[1] state   KEYS[2] seats   KEYS[3] holds   KEYS[4] buyers
  KEYS[5] expiry  KEYS[6] stream
  ARGV[1] buyer id
  ARGV[2] hold id
  ARGV[3] stream maxlen
  ARGV[4..] seat ids to release (none: the whole hold)

  Replies:
    {'ok', version, remaining_seat...}     released; remaining seats of the hold
    {'not_found', version}                 no such live hold for this buyer
    {'not_in_hold', version, seat...}      some seats are not in the hold: nothing released
    {'no_event'}
]]
local K_state, K_seats, K_holds, K_buyers = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_expiry, K_stream = KEYS[5], KEYS[6]
local buyer, hold_id, stream_maxlen = ARGV[1], ARGV[2], ARGV[3]
local FIRST_SEAT = 4

--- @include "event"

if not event_exists() then return { 'no_event' } end
local changes = {}
local now = now_ms()
expire_due(now, 100, changes)

local live_id, hold = live_hold_of_owner('h' .. hold_id, now, changes)
if not live_id or hold.b ~= buyer then
  return { 'not_found', emit(changes) }
end

if #ARGV < FIRST_SEAT then
  drop_hold(hold_id, hold, changes)
  return { 'ok', emit(changes) }
end

local releasing, missing = {}, {}
for i = FIRST_SEAT, #ARGV do releasing[ARGV[i]] = true end
local in_hold = {}
for _, seat in ipairs(hold.s) do in_hold[seat] = true end
for i = FIRST_SEAT, #ARGV do
  if not in_hold[ARGV[i]] then table.insert(missing, ARGV[i]) end
end
if #missing > 0 then
  local reply = { 'not_in_hold', emit(changes) }
  for _, seat in ipairs(missing) do table.insert(reply, seat) end
  return reply
end

local remaining, freed = {}, {}
local owner = 'h' .. hold_id
local owners = #hold.s > 0 and redis.call('HMGET', K_seats, unpack(hold.s)) or {}
for i, seat in ipairs(hold.s) do
  if releasing[seat] then
    if owners[i] == owner then
      table.insert(freed, seat)
      changes[seat] = 'available'
    end
  else
    table.insert(remaining, seat)
  end
end
if #freed > 0 then redis.call('HDEL', K_seats, unpack(freed)) end
if #remaining == 0 then
  drop_hold(hold_id, hold, changes)
else
  hold.s = remaining
  save_hold(hold_id, hold)
end
local reply = { 'ok', emit(changes) }
for _, seat in ipairs(remaining) do table.insert(reply, seat) end
return reply
