-- wrk script for bench/compare.py (run with -t1: the pools below are per thread).
--
-- Environment:
--   MODE     fixed   one request over and over (METHOD, REQ_PATH, BODY, AUTH)
--            pool    BODY has a "{}" that each request fills with a value taken from the
--                    pool (POOL_FILE, one value a line); a 2xx answer's JSON field POOL_FIELD
--                    goes back into the pool (rotating refresh tokens: every answer's token is
--                    the next request's). Without POOL_FIELD each value is used once.
--            flow    authorization-code flow: GET AUTHORIZE_PATH (with COOKIE) answers a
--                    redirect carrying a code, which the next request redeems with BODY
--                    ("{}" = the code) at REQ_PATH. Only the redemptions are counted as flows.
--   METHOD, REQ_PATH, BODY (form), AUTH (whole Authorization header value)
-- Prints: RESULT rps=… p50=… p99=… bad=… errors=… done=… (done = completed units: requests,
-- or flows in flow mode; latencies are per HTTP request).
local mode = os.getenv("MODE") or "fixed"
local method = os.getenv("METHOD") or "GET"
local path = os.getenv("REQ_PATH") or "/"
local body = os.getenv("BODY") or ""
local auth = os.getenv("AUTH") or ""
local cookie = os.getenv("COOKIE") or ""
local authorize_path = os.getenv("AUTHORIZE_PATH") or ""
local pool_field = os.getenv("POOL_FIELD") or ""

bad, completed, exhausted = 0, 0, 0  -- globals: read back by done() through thread:get
local pool, head, tail = {}, 1, 0
local codes = {}
local flows_started = 0
-- a fresh nonce per authorization request (a replayed nonce is refused)
local nonce_prefix = string.format("n%x%x", os.time(), math.random(1, 2 ^ 30))

local function push(value) tail = tail + 1; pool[tail] = value end
local function pop()
  if head > tail then return nil end
  local value = pool[head]; pool[head] = nil; head = head + 1
  return value
end

local function fill(template, value)
  return (template:gsub("{}", function() return value end))
end

local function headers(extra)
  local h = {}
  if auth ~= "" then h["Authorization"] = auth end
  if extra then for k, v in pairs(extra) do h[k] = v end end
  return h
end

local form = { ["Content-Type"] = "application/x-www-form-urlencoded" }

function init(args)
  local file = os.getenv("POOL_FILE")
  if file and file ~= "" then
    for line in io.lines(file) do if line ~= "" then push(line) end end
  end
end

function request()
  if mode == "pool" then
    local value = pop()
    if value == nil then
      exhausted = exhausted + 1
      value = "exhausted"
    end
    return wrk.format(method, path, headers(form), fill(body, value))
  elseif mode == "flow" then
    local code = table.remove(codes)
    if code then
      return wrk.format("POST", path, headers(form), fill(body, code))
    end
    flows_started = flows_started + 1
    local target = authorize_path:gsub("{n}", function() return nonce_prefix .. flows_started end)
    return wrk.format("GET", target, { ["Cookie"] = cookie })
  end
  local h = headers(body ~= "" and form or nil)
  return wrk.format(method, path, h, body ~= "" and body or nil)
end

function response(status, hdrs, answer)
  if mode == "flow" then
    if status == 302 or status == 303 then
      local location = hdrs["Location"] or hdrs["location"] or ""
      local code = location:match("[?&]code=([^&]+)")
      if code then table.insert(codes, code) else bad = bad + 1 end
      return
    end
    if status >= 200 and status <= 299 then completed = completed + 1 else bad = bad + 1 end
    return
  end
  if status < 200 or status > 299 then
    bad = bad + 1
  else
    completed = completed + 1
  end
  if mode == "pool" and pool_field ~= "" then
    local value = answer and answer:match('"' .. pool_field .. '"%s*:%s*"([^"]+)"')
    if value then push(value) end
  end
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

function done(summary, latency, requests)
  -- done() runs in its own Lua state: the counters live in the threads' states.
  local bad, completed, exhausted = 0, 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("bad")
    completed = completed + thread:get("completed")
    exhausted = exhausted + thread:get("exhausted")
  end
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT rps=%.1f p50=%.2f p99=%.2f bad=%d errors=%d done=%d units=%.1f exhausted=%d\n",
    summary.requests / seconds, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    bad, summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout,
    completed, completed / seconds, exhausted))
end
