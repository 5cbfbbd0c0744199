--[[
  rate_limit.lua: count one request (or `cost` requests) against a rate limit
  of `limit` per `period`, shared by every server process that calls it. GCRA
  (the generic cell rate algorithm, as in redis-cell and Stripe's limiters):
  the key holds one number, the theoretical arrival time (TAT) of the next
  request in microseconds of Redis's clock. A burst of `limit` is allowed,
  after which requests are admitted every period/limit; a refused request
  changes nothing, so hammering does not push the window further out.
  The key expires when the limiter is back to full, so idle identities cost
  no memory. Time is Redis's own (TIME), the same for every worker and node.

  KEYS[1] limiter   string   TAT in microseconds (absent: full burst available)
  ARGV[1] limit     requests per period (>= 1)
  ARGV[2] period    the window in milliseconds (>= 1)
  ARGV[3] cost      requests this call counts for (>= 1; usually 1)

  Replies:
    {1, 0, remaining, reset_ms}             allowed; `remaining` more would be
                                            allowed right now; full again in reset_ms
    {0, retry_ms, 0, reset_ms}              refused; the same call would be allowed
                                            after retry_ms (>= 1)
    {0, -1, 0, 0}                           refused for good: cost > limit
]]
local K_limiter = KEYS[1]
local limit, period_ms, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

-- The reply depends on TIME, so replicate the write, not the script (a no-op
-- on Redis 7, needed on 6.2).
redis.replicate_commands()

if cost > limit then return { 0, -1, 0, 0 } end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period = period_ms * 1000
local interval = period / limit            -- microseconds between requests at the steady rate

local tat = tonumber(redis.call('GET', K_limiter) or '0') or 0
if tat < now then tat = now end
local new_tat = tat + cost * interval
local allow_at = new_tat - period          -- the earliest moment this call fits in the burst

if now < allow_at then
  return { 0, math.max(1, math.ceil((allow_at - now) / 1000)), 0, math.ceil((tat - now) / 1000) }
end

local reset_ms = math.ceil((new_tat - now) / 1000)
-- Whole microseconds, rounded down (in the caller's favour, never against it);
-- %.0f because tostring() would print a 16-digit number as 1.7e+15 and lose it.
redis.call('SET', K_limiter, string.format('%.0f', math.floor(new_tat)), 'PX', math.max(1, reset_ms))
local remaining = math.floor((period - (new_tat - now)) / interval)
return { 1, 0, remaining, reset_ms }
