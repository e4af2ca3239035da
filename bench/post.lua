-- wrk script: POST a fixed JSON body with extra headers; print one JSON line of results.
-- Usage: wrk -t1 -cN -dDs --latency -s post.lua URL -- BODY_FILE ['Header: value' ...]
-- The request is built once per thread, so the load generator does no per-request Lua work.

function init(args)
   local f = assert(io.open(args[1], "rb"))
   wrk.body = f:read("*a")
   f:close()
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   for i = 2, #args do
      local k, v = args[i]:match("^([^:]+):%s*(.*)$")
      if k then wrk.headers[k] = v end
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      'WRKJSON {"requests":%d,"rps":%.3f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,' ..
      '"max_us":%d,"errors":%d}\n',
      summary.requests, summary.requests / secs, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9), latency.max,
      e.connect + e.read + e.write + e.status + e.timeout))
end
