-- GET requests with an optional bearer token; the path comes from BENCH_PATH. "{lon}" and "{lat}" in it
-- are replaced by a random point inside the grid lattice.
local token = os.getenv("BENCH_TOKEN")
local path = os.getenv("BENCH_PATH") or "/healthz"
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
  local p = path:gsub("{lon}", string.format("%.7f", 121.0 + math.random() * 0.42))
                :gsub("{lat}", string.format("%.7f", 31.0 + math.random() * 0.225))
  local headers = {}
  if token and token ~= "" then headers["Authorization"] = "Bearer " .. token end
  return wrk.format("GET", p, headers)
end

dofile(os.getenv("BENCH_LUA_DIR") .. "/summary.lua")
