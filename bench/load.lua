-- The request script `bench/load.py` gives wrk: POST the disclosure body (with the bearer token,
-- if any), count the answers by HTTP status, stop once the request cap is reached, and print one
-- line `BENCH-RESULT {json}` with the figures. Run with one wrk thread (`-t1`); the cap is per thread.
--
-- wrk itself sleeps out the whole `--duration` and reports that as the run's length, even when
-- the cap stopped the thread early. So the measured window runs from the thread's start to its
-- last answer, read from the monotonic clock through LuaJIT's FFI; and a thread that reaches the
-- cap sends wrk SIGINT (as Ctrl-C would), on which wrk stops sleeping and reports at once.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *now);
int getpid(void);
int kill(int pid, int sig);
]]
local CLOCK_MONOTONIC = 1
local SIGINT = 2
local clock = ffi.new("bench_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000000 + tonumber(clock.tv_nsec) / 1000
end

local body = os.getenv("BENCH_BODY")
local token = os.getenv("BENCH_TOKEN") or ""
local cap = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "0")

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  answered = 0
  started_us = now_us()
  last_us = started_us
end

function response(status, headers, body)
  answered = answered + 1
  last_us = now_us()
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if cap > 0 and answered >= cap then
    wrk.thread:stop()
    ffi.C.kill(ffi.C.getpid(), SIGINT)
  end
end

function done(summary, latency, requests)
  local counts = {}
  local first, last = nil, nil
  for _, thread in ipairs(threads) do
    local started, ended = thread:get("started_us"), thread:get("last_us")
    if first == nil or started < first then first = started end
    if last == nil or ended > last then last = ended end
    for status, n in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%s": %d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"window_us": %d, "statuses": {%s}, ' ..
    '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, ' ..
    '"p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    last - first, table.concat(parts, ", "),
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
