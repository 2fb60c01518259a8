-- wrk script for bench_api.py: POSTs one form body per request, taken in order from a file.
-- Arguments (after --): path, bodies file, first line (0-based), then "Header: value" pairs.
-- Run with one wrk thread (-t1) so that bodies are consumed strictly in order. When the file runs
-- out it starts over and counts a wrap; bench_api.py sizes the file so that this never happens and
-- reports it if it does. done() prints one JSON line that bench_api.py parses.

local bodies = {}
local index = 0
wraps = 0 -- global: done() reads it through thread:get
local path = "/"
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   path = args[1]
   for line in io.lines(args[2]) do
      bodies[#bodies + 1] = line
   end
   index = tonumber(args[3])
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
   for i = 4, #args do
      local name, value = string.match(args[i], "^([^:]+):%s*(.*)$")
      if name then
         wrk.headers[name] = value
      end
   end
end

function request()
   if index >= #bodies then
      index = 0
      wraps = wraps + 1
   end
   index = index + 1
   return wrk.format("POST", path, nil, bodies[index])
end

function done(summary, latency, requests)
   local total_wraps = 0
   for _, thread in ipairs(threads) do
      total_wraps = total_wraps + (thread:get("wraps") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
      '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,"wraps":%d}\n',
      summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50.0), latency:percentile(99.0), latency.max, latency.mean, total_wraps))
end
