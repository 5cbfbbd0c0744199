--[[
  best_available.lua: choose and hold the best `count` free seats for a buyer,
  in one atomic step (no retries under contention), adding them to the
  buyer's hold like hold.lua. The choice follows seats.io's best-available
  steps, each tried only when the one before finds nothing:
    1. `count` adjacent seats in one row leaving no orphan (a single free seat
       cut off between taken seats or a row end), nearest the focal point;
    2. adjacent seats in one row, orphans allowed;
    3. `count` seats in one row, not adjacent;
    4. the `count` nearest free seats anywhere.
  "Nearest" is the smallest sum of the seats' distances to the focal point.
  Rows are stored nearest first, so step 1 stops scanning once no later row
  can beat the best block found.

  Layout (written by init_event.lua from server/layout.py), all msgpack:
    layout['meta'] = {rows = R, sec = {section per row}, tiers = {tier letters
                      present per row}, min = {smallest seat distance per row}}
    layout['r<i>'] = {ids = {seat ids in seat-number order}, d = {distance
                      per seat, integer}, t = 'RPV...' tier letter per seat}

  KEYS[1] state   KEYS[2] seats   KEYS[3] holds   KEYS[4] buyers
  KEYS[5] expiry  KEYS[6] owned   KEYS[7] stream  KEYS[8] layout
  ARGV[1] buyer id
  ARGV[2] hold id to use if the buyer has no live hold
  ARGV[3] hold life in ms
  ARGV[4] max seats per buyer
  ARGV[5] stream maxlen
  ARGV[6] request id ('' for none): a retry of the same request id answers
          the seats it picked the first time instead of picking more
  ARGV[7] count
  ARGV[8] tier letter (R, P or V) or '' for any
  ARGV[9] section or '' for any

  Replies:
    {'ok', hold_id, expires_ms, version, adjacent ('1'|'0'), n, seat1..seatn, picked...}
    {'unavailable', version}          fewer than `count` eligible seats are free
    {'limit', version, held, owned, count}
    {'no_event'}
]]
local K_state, K_seats, K_holds, K_buyers = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_expiry, K_owned, K_stream, K_layout = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local buyer, new_hold_id = ARGV[1], ARGV[2]
local hold_ms, max_seats = tonumber(ARGV[3]), tonumber(ARGV[4])
local stream_maxlen, request_id = ARGV[5], ARGV[6]
local count, tier, section = tonumber(ARGV[7]), ARGV[8], ARGV[9]

--- @include "event"
--- @include "grant"

if not event_exists() then return { 'no_event' } end
local changes = {}
local now = now_ms()
expire_due(now, 100, changes)

local hold_id, hold = buyer_hold(buyer, now, changes)
if request_id ~= '' and hold and hold.q and hold.q[request_id] then
  local earlier = hold.q[request_id]
  return granted_reply(hold_id, hold, emit(changes), earlier.a, earlier.s)
end

local room, held, owned = room_left(buyer, hold, max_seats)
if count > room then
  return { 'limit', emit(changes), held, owned, count }
end

local meta = cmsgpack.unpack(redis.call('HGET', K_layout, 'meta'))

-- Which seats of row i are free (a seat of a live hold, a checkout or a
-- booking is taken) and which of those the request may have (tier).
local function scan_row(i)
  local row = cmsgpack.unpack(redis.call('HGET', K_layout, 'r' .. i))
  local ids, n = row.ids, #row.ids
  local free, eligible = {}, {}
  local CHUNK = 1000
  for first = 1, n, CHUNK do
    local last = math.min(first + CHUNK - 1, n)
    local owners = redis.call('HMGET', K_seats, unpack(ids, first, last))
    for j = first, last do
      local is_free = not owners[j - first + 1]
      free[j] = is_free
      eligible[j] = is_free and (tier == '' or string.sub(row.t, j, j) == tier)
    end
  end
  return row, free, eligible
end

-- Length of the run of free seats from j stepping by `step`.
local function free_run(free, j, step, n)
  local len = 0
  while j >= 1 and j <= n and free[j] do
    len = len + 1
    j = j + step
  end
  return len
end

local best = {}   -- best[step] = {sum, row, seats}
local function offer(step, sum, seats)
  local current = best[step]
  if not current or sum < current.sum then best[step] = { sum = sum, seats = seats } end
end

local eligible_anywhere = {}   -- {distance, id} of every eligible seat seen (step 4)
local rows = meta.rows
for i = 1, rows do
  -- Step 1 cannot improve once a row's nearest seat is too far for any block.
  if best[1] and count * meta.min[i] >= best[1].sum then break end
  local row_ok = (section == '' or meta.sec[i] == section)
    and (tier == '' or string.find(meta.tiers[i], tier, 1, true))
  if row_ok then
    local row, free, eligible = scan_row(i)
    local n, d = #row.ids, row.d
    -- Steps 1 and 2: every window of `count` consecutive eligible seats.
    local run_start, sum = nil, 0
    for j = 1, n do
      if eligible[j] then
        if not run_start then run_start, sum = j, 0 end
        sum = sum + d[j]
        if j - run_start + 1 > count then sum = sum - d[j - count] end
        if j - run_start + 1 >= count then
          local a = j - count + 1
          local left = free_run(free, a - 1, -1, n)
          local right = free_run(free, j + 1, 1, n)
          local seats = {}
          for k = a, j do table.insert(seats, row.ids[k]) end
          if left ~= 1 and right ~= 1 then offer(1, sum, seats) end
          offer(2, sum, seats)
        end
      else
        run_start = nil
      end
    end
    -- Steps 3 and 4 are only needed while no adjacent block exists at all.
    if not best[2] then
      local mine = {}
      for j = 1, n do
        if eligible[j] then
          table.insert(mine, { d[j], row.ids[j] })
          table.insert(eligible_anywhere, { d[j], row.ids[j] })
        end
      end
      if #mine >= count then
        table.sort(mine, function(x, y) return x[1] < y[1] end)
        local sum3, seats = 0, {}
        for k = 1, count do
          sum3 = sum3 + mine[k][1]
          table.insert(seats, mine[k][2])
        end
        offer(3, sum3, seats)
      end
    end
  end
end

local chosen, adjacent = nil, '0'
if best[1] then chosen, adjacent = best[1].seats, '1'
elseif best[2] then chosen, adjacent = best[2].seats, '1'
elseif best[3] then chosen = best[3].seats
elseif #eligible_anywhere >= count then
  table.sort(eligible_anywhere, function(x, y) return x[1] < y[1] end)
  chosen = {}
  for k = 1, count do table.insert(chosen, eligible_anywhere[k][2]) end
end
if not chosen then return { 'unavailable', emit(changes) } end

hold_id, hold = grant(buyer, hold_id, hold, new_hold_id, hold_ms, now, chosen, changes)
if request_id ~= '' then
  hold.q = hold.q or {}
  hold.q[request_id] = { s = chosen, a = adjacent }
  save_hold(hold_id, hold)
end
return granted_reply(hold_id, hold, emit(changes), adjacent, chosen)
