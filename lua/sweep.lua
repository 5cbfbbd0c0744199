--[[
  sweep.lua: expire the event's holds whose time has come, freeing their
  seats as one stream entry. Run periodically by every server process; being
  atomic and idempotent, overlapping sweeps are harmless, and nothing relies
  on their timing (every other script expires what it touches).

  KEYS[1] state   KEYS[2] seats   KEYS[3] holds   KEYS[4] buyers
  KEYS[5] expiry  KEYS[6] stream
  ARGV[1] stream maxlen
  ARGV[2] most holds to expire in this call

  Replies:
    {expired_count, version, next_expiry_ms or -1}
    {-1}   the event has no live state
]]
local K_state, K_seats, K_holds, K_buyers = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_expiry, K_stream = KEYS[5], KEYS[6]
local stream_maxlen, limit = ARGV[1], tonumber(ARGV[2])

--- @include "event"

if not event_exists() then return { -1 } end
local changes = {}
local expired = expire_due(now_ms(), limit, changes)
local version = emit(changes)
local nxt = redis.call('ZRANGE', K_expiry, 0, 0, 'WITHSCORES')
local next_expiry = -1
if #nxt == 2 then next_expiry = tonumber(nxt[2]) end
return { expired, version, next_expiry }
