-- POST /api/v1/reports: a unique Idempotency-Key per request, a random point inside the grid lattice.
local token = os.getenv("BENCH_TOKEN")
local counter = 0
tid = 0  -- global: setup() sets it per thread with thread:set
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + tid)
end

function request()
  counter = counter + 1
  local lon = 121.0 + math.random() * 0.42
  local lat = 31.0 + math.random() * 0.225
  local body = string.format(
    '{"category_code":"0101","lon":%.7f,"lat":%.7f,"accuracy_m":8,"observed_at":"2026-11-26T05:00:00+00:00","description":"wrk"}',
    lon, lat)
  return wrk.format("POST", "/api/v1/reports", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = string.format("wrk-%d-%d-%d", os.time(), tid, counter),
  }, body)
end

dofile(os.getenv("BENCH_LUA_DIR") .. "/summary.lua")
