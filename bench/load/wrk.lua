-- bench/load/wrk.lua: the wrk script bench/load.py runs for every closed-loop
-- point.
--
--   wrk -t1 -c64 -d5s -s bench/load/wrk.lua URL -- [METHOD [BODY_BYTES]]
--
-- METHOD defaults to GET; with BODY_BYTES > 0 every request carries that many
-- body bytes (Content-Length). done() prints one line "WRKJSON {...}" with the
-- request count, the error counts and the latency percentiles wrk's histogram
-- gives (µs), which load.py parses; wrk's own summary is printed as usual.

local req

function init(args)
  local method = args[1] or "GET"
  local n = tonumber(args[2] or "0") or 0
  local headers, body = {}, nil
  if n > 0 then
    body = string.rep("x", n)
    headers["Content-Type"] = "application/octet-stream"
    headers["Content-Length"] = tostring(n)
  end
  req = wrk.format(method, nil, headers, body)
end

function request()
  return req
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"duration_us": %d, "requests": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"min": %d, "mean": %.1f, "p50": %d, "p90": %d, "p95": %d, ' ..
    '"p99": %d, "p99_9": %d, "max": %d}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency:percentile(99.9),
    latency.max))
end
