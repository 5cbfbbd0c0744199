--[[
  snapshot.lua: read an event's live state in one atomic step: its epoch, its
  version and every seat that is not available, with its public state. Read
  only.

  KEYS[1] state   KEYS[2] seats

  Replies:
    {epoch, version, seat, state, seat, state, ...}  state is 'held' or 'booked'
    {}                                               the event has no live state
]]
local K_state, K_seats = KEYS[1], KEYS[2]

local epoch = redis.call('HGET', K_state, 'epoch')
if not epoch then return {} end
local reply = { epoch, tonumber(redis.call('HGET', K_state, 'version')) }
local owners = redis.call('HGETALL', K_seats)
for i = 1, #owners, 2 do
  table.insert(reply, owners[i])
  if string.sub(owners[i + 1], 1, 1) == 'b' then
    table.insert(reply, 'booked')
  else
    table.insert(reply, 'held')
  end
end
return reply
