-- POST bodies for wrk, a different one per request (peer_bench.py's client).
--
--   wrk -t THREADS -c CONNS -d 20s -s wrk_post.lua URL -- BODIES_FILE THREADS [BUDGET_S]
--
-- BODIES_FILE holds one JSON body per line. Each wrk thread formats every request once, in init,
-- and then cycles through them from its own offset, so the per-request cost in Lua is one table
-- lookup. With BUDGET_S, every request carries X-Request-Timeout (bert-serve's client time budget;
-- other servers ignore it). done() prints one line, "PEER_BENCH {json}", that peer_bench.py reads.

local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

local prepared = {}
local position = 0

function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  if args[3] then
    headers["X-Request-Timeout"] = args[3]
  end
  for line in io.lines(args[1]) do
    prepared[#prepared + 1] = wrk.format("POST", nil, headers, line)
  end
  if #prepared == 0 then
    error("no request bodies in " .. args[1])
  end
  local threads = tonumber(args[2]) or 1
  position = (id * math.floor(#prepared / threads)) % #prepared
end

function request()
  position = position % #prepared + 1
  return prepared[position]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'PEER_BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
      .. '"socket_errors": %d, "status_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write, e.status, e.timeout))
end
