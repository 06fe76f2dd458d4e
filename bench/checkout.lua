-- The checkout journey for wrk (bench/checkout drives it; run with -t1).
--
-- Each buyer walks, one request at a time: add listing A to the cart, add
-- listing B (the same seller's, so the order has two items), tokenize a
-- card at the sandbox, check out with a fresh Idempotency-Key (201, status
-- "paid"), then again with the next seller. wrk's request()/response() do
-- not say which connection they serve, so a request carries its own
-- X-Request-Id (the server echoes it) and the response is matched to its
-- buyer and step by that id; a buyer is in flight on at most one connection.
-- Latencies are taken with clock_gettime through LuaJIT's ffi.
--
-- Environment: CHECKOUT_BUYERS (a file of lines "access_token seller_index"),
-- CHECKOUT_LISTINGS (lines "listing_a listing_b", one per seller),
-- CHECKOUT_OUT (counters, written by done(); latencies in CHECKOUT_OUT.lat<thread>,
-- written as the answers come), CHECKOUT_RUN (a unique prefix
-- for request ids and idempotency keys), CHECKOUT_MODE ("journey", or
-- "healthz": the same bookkeeping with every step a GET /healthz, to measure
-- what the generator itself can drive).

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } agora_timespec;
int clock_gettime(int clk_id, agora_timespec *tp);
]]
local ts = ffi.new("agora_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local mode = os.getenv("CHECKOUT_MODE") or "journey"
local run = os.getenv("CHECKOUT_RUN") or "bench"
local year = tonumber(os.date("%Y")) + 2
local STEPS = 4
local STEP_NAMES = { "cart_a", "cart_b", "token", "checkout" }

local buyers = {}   -- { token =, auth =, seller =, step =, journeys =, started = }
local listings = {} -- [seller index + 1] = { a, b }
local ready = {}    -- queue of buyer indices waiting for a connection
local head, tail = 1, 0
local inflight = {} -- request id -> { buyer, step, sent_us }
local seq = 0

-- Counters, read by done() through thread:get (numbers and strings only:
-- copying big tables between Lua states crashes wrk 4.1). Latencies go
-- to a file of this thread's own, one "<step> <µs>" line each.
paid = 0
failures = ""       -- "step status;" per failed step
failure_samples = ""
fillers = 0
requeued = 0
responses = 0
local samples = 0
local lat_file

local function push(b)
  tail = tail + 1
  ready[tail] = b
end

local function pop()
  if head > tail then return nil end
  local b = ready[head]
  ready[head] = nil
  head = head + 1
  return b
end

local function read_lines(path)
  local out = {}
  for line in io.lines(path) do
    if line ~= "" then out[#out + 1] = line end
  end
  return out
end

function init(args)
  lat_file = assert(io.open(os.getenv("CHECKOUT_OUT") .. ".lat" .. (id or 1), "w"))
  lat_file:setvbuf("full", 65536)
  for _, line in ipairs(read_lines(os.getenv("CHECKOUT_LISTINGS"))) do
    local a, b = line:match("^(%S+)%s+(%S+)$")
    listings[#listings + 1] = { a, b }
  end
  for i, line in ipairs(read_lines(os.getenv("CHECKOUT_BUYERS"))) do
    local token, seller = line:match("^(%S+)%s+(%d+)$")
    buyers[i] = { auth = "Bearer " .. token, seller = tonumber(seller), step = 1, journeys = 0, started = 0 }
    push(i)
  end
end

local JSON = "application/json"
local TOKEN_BODY = string.format(
  '{"card_number":"4242424242424242","exp_month":12,"exp_year":%d,"cvc":"123"}', year)
local ADDRESS = '"shipping_address":{"name":"Bea Buyer","line1":"Hauptstrasse 1","city":"Berlin",' ..
    '"postal_code":"10115","country":"DE"}'

local function build(b, rid)
  local buyer = buyers[b]
  local step = buyer.step
  if mode == "healthz" then
    return wrk.format("GET", "/healthz", { ["X-Request-Id"] = rid })
  end
  if step <= 2 then
    local pair = listings[(buyer.seller + buyer.journeys) % #listings + 1]
    return wrk.format("POST", "/v1/cart/items",
      { ["Authorization"] = buyer.auth, ["Content-Type"] = JSON, ["X-Request-Id"] = rid },
      '{"product_id":"' .. pair[step] .. '","quantity":1}')
  elseif step == 3 then
    return wrk.format("POST", "/sandbox/v1/tokens", { ["Content-Type"] = JSON, ["X-Request-Id"] = rid }, TOKEN_BODY)
  end
  return wrk.format("POST", "/v1/checkout",
    { ["Authorization"] = buyer.auth, ["Content-Type"] = JSON, ["X-Request-Id"] = rid,
      ["Idempotency-Key"] = rid },
    '{"payment_token":"' .. buyer.token .. '",' .. ADDRESS .. '}')
end

-- A request whose answer never came (the connection broke or timed out):
-- its buyer starts the journey again after 10 s.
local function sweep(now)
  for rid, f in pairs(inflight) do
    if now - f[3] > 10000000 then
      inflight[rid] = nil
      buyers[f[1]].step = 1
      requeued = requeued + 1
      push(f[1])
    end
  end
end

function request()
  seq = seq + 1
  local now = now_us()
  if seq % 4096 == 0 then sweep(now) end
  local b = pop()
  local rid = run .. "-" .. seq
  if b == nil then
    -- More connections than idle buyers: keep the connection busy cheaply.
    fillers = fillers + 1
    return wrk.format("GET", "/healthz", { ["X-Request-Id"] = rid })
  end
  local buyer = buyers[b]
  if buyer.step == 1 then buyer.started = now end
  inflight[rid] = { b, buyer.step, now }
  return build(b, rid)
end

local function fail(step, status, body)
  local k = STEP_NAMES[step] .. "_" .. status
  failures = failures .. k .. ";"
  samples = samples + 1
  if samples <= 5 then
    failure_samples = failure_samples .. k .. " " .. string.sub(body or "", 1, 300):gsub("[\r\n|]", " ") .. "|"
  end
end

function response(status, headers, body)
  responses = responses + 1
  local rid = headers["X-Request-Id"] or headers["x-request-id"]
  local f = rid and inflight[rid]
  if not f then return end -- a filler, or an answer after the sweep gave up on it
  inflight[rid] = nil
  local b, step, sent = f[1], f[2], f[3]
  local buyer = buyers[b]
  local now = now_us()
  local ok
  if mode == "healthz" then
    ok = status == 200
  elseif step <= 2 then
    ok = status == 200 or status == 201
  elseif step == 3 then
    ok = status == 200
    if ok then
      buyer.token = body:match('"id":"(tok_[%w_]+)"')
      ok = buyer.token ~= nil
    end
  else
    ok = status == 201 and body:find('^{"id":"chk_[%w_]+","status":"paid"') ~= nil
  end
  if not ok then
    fail(step, status, body)
    buyer.step = 1 -- start over (a line left in the cart merges with the next add)
    buyer.journeys = buyer.journeys + 1
    push(b)
    return
  end
  if step < STEPS then
    lat_file:write(STEP_NAMES[step], " ", string.format("%.0f", now - sent), "\n")
    buyer.step = step + 1
  else
    lat_file:write("checkout ", string.format("%.0f", now - sent), "\njourney ",
      string.format("%.0f", now - buyer.started), "\n")
    paid = paid + 1
    buyer.step = 1
    buyer.journeys = buyer.journeys + 1
  end
  push(b)
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("id", #threads)
end

-- Runs in the main Lua state after the threads stopped; the latency files
-- are flushed when wrk exits.
function done(summary, latency, requests)
  local f = assert(io.open(os.getenv("CHECKOUT_OUT"), "w"))
  f:write(string.format("duration_us %d\nrequests %d\n", summary.duration, summary.requests))
  f:write(string.format("errors %d %d %d %d %d\n", summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout))
  local sums = { paid = 0, fillers = 0, requeued = 0, responses = 0 }
  for _, t in ipairs(threads) do
    for k, _ in pairs(sums) do sums[k] = sums[k] + t:get(k) end
    for k in string.gmatch(t:get("failures"), "([^;]+);") do f:write("failure ", k, " 1\n") end
    for s in string.gmatch(t:get("failure_samples"), "([^|]+)|") do f:write("sample ", s, "\n") end
  end
  for k, v in pairs(sums) do f:write(k, " ", v, "\n") end
  f:write("threads ", #threads, "\n")
  f:close()
end
