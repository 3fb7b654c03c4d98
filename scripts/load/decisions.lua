-- wrk script: POST /v1/decisions with realistic, varied bodies.
--
-- Every request is a new interaction (unique id per thread and request), from
-- one of 10,000 customers spread over tiers and regions, with a ~300-character
-- text drawn from a small set of real-sounding complaints, reviews, questions
-- and praise. Varying ids matters: a repeated id would hit the idempotency
-- record and measure a replay instead of a decision.
--
-- BATCH=<n> in the environment sends {"interactions": [n items]} to
-- /v1/decisions/batch instead.
--
-- HOT=1 (scripts/hotkey.sh, TESTPLAN P3) sends only complaints, each from a
-- customer never seen before and all of one segment (one tier, one region),
-- so every decision asks for a gesture from the day's one budget pool; the
-- answers are read, and the gestures told to the clients are counted
-- (decisions, grants and their value in milli-units) for the budget check.

local texts = {
  {"complaint", 1, "My order arrived two weeks late and the box was crushed, the glass inside was broken into pieces. I wrote to support three times and nobody answered any of my emails. This is the second time this happens and I am really disappointed, I expected much better from a shop I have been loyal to for years."},
  {"complaint", 2, "The jacket I bought started to fall apart after one wash, the seams opened on both sides and the zip broke. I paid full price for it and the product page promised premium quality. Please tell me how you intend to fix this, because right now I feel cheated and I am telling my friends about it."},
  {"review", 3, "Delivery was on time and the courier was friendly, but the blender is louder than I expected and the lid does not close well unless you press it hard. It does the job for smoothies, I just wish the description had been more honest about the noise. Three stars, might buy again if the price drops."},
  {"review", 5, "Absolutely love these running shoes. They arrived a day early, fit perfectly and after two hundred kilometres they still feel great. Customer service even answered my sizing question within an hour before I ordered. Thank you for the great experience, I have already recommended you to my whole running club."},
  {"question", nil, "Hello, I ordered a sofa last Tuesday and the tracking page has said preparing for six days now. Could you tell me when it will be shipped and whether I can still change the delivery address to my new flat? I will be moving at the end of the month and want to be sure someone is home to receive it."},
  {"praise", 5, "Just wanted to say a big thank you to Maria from your support team, she sorted out my billing problem in five minutes after I had been stuck for a week with another company. Friendly, quick and clear. This is why I keep shopping with you and why I will keep recommending you to everyone who asks me."},
  {"complaint", 1, "I was charged twice for the same order and when I called, the agent hung up on me. It has been ten days and the money is still not back on my card. I need this refunded now, this is unacceptable and if it is not solved this week I will file a complaint with my bank and leave reviews everywhere."},
  {"mention", nil, "Saw the new autumn collection in the shop window today, the colours look nice but the prices went up again compared to last year. Curious whether the quality improved as well or whether it is the same stuff with a new label. Anyone tried the wool coats yet? Thinking about getting one for the winter."},
}
local channels = {"review_site", "social", "email", "chat", "phone", "in_app", "survey"}
local tiers = {"bronze", "silver", "gold", "platinum"}
local regions = {"EU", "NA", "APAC", "LATAM", "MEA"}

local thread_id = 0
local threads = {}
local batch = tonumber(os.getenv("BATCH") or "0")
local hot = os.getenv("HOT") == "1"

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

-- The bodies are drawn once, in init, as a pool of templates split around
-- the interaction id's counter, so a request costs the load generator one
-- string concatenation: on a shared 2-core machine the generator's CPU is
-- taken from the server, and formatting every body per request
-- (string.format, wrk.format) cost wrk about 2 us of CPU per request
-- (0.86 -> 0.70 s of user time in a 5-second run). The counter has a fixed
-- width (it starts at 10^11), so each template's Content-Length is fixed
-- and the whole request, headers included, is prepared in advance. Every
-- customer appears in every thread's pool. The path is the URL's.
local POOL = 16384
local pre, mid, post = {}, {}, {}
local counter = 100000000000
local headers = {["Content-Type"] = "application/json"}
local MARK = "@@COUNTER@@@"

local complaints = {}
for _, t in ipairs(texts) do
  if t[1] == "complaint" then table.insert(complaints, t) end
end

local function interaction(c)
  local t = hot and complaints[math.random(#complaints)] or texts[math.random(#texts)]
  local public = math.random() < 0.4
  local rating = t[2] and string.format(', "rating": %d', t[2]) or ""
  -- A hot customer's id carries the counter too: a new customer per request.
  local customer = hot and string.format("h-%d-%d-%s", os.time(), thread_id, MARK)
    or string.format("c-%d", c)
  return string.format(
    '{"interaction_id": "load-%d-%d-%s", "customer": {"id": "%s", "tenure_days": %d, ' ..
    '"lifetime_value": %.2f, "attributes": {"tier": "%s", "region": "%s"}}, ' ..
    '"channel": "%s", "public": %s, "audience": %d, "kind": "%s"%s, ' ..
    '"text": "%s", "order_value": %.2f}',
    os.time(), thread_id, MARK, customer, (c * 37) % 3000, 50 + (c * 13) % 4000,
    hot and tiers[3] or tiers[1 + c % #tiers],
    hot and regions[1] or regions[1 + math.floor(c / 7) % #regions],
    channels[math.random(#channels)], public and "true" or "false",
    public and math.random(0, 20000) or 0, t[1], rating, t[3],
    10 + math.random() * 190)
end

function init(args)
  thread_id = tonumber(tid) or 0
  math.randomseed(1234 + thread_id)
  assert(#MARK == #tostring(counter))
  for i = 1, POOL do
    -- Customers 1..10,000 in turn, then random ones.
    local c = i <= 10000 and i or math.random(10000)
    local text = batch > 0 and interaction(c)
      or wrk.format("POST", nil, headers, interaction(c))
    local at = string.find(text, MARK, 1, true)
    pre[i], post[i] = string.sub(text, 1, at - 1), string.sub(text, at + #MARK)
    if hot then
      -- The second mark (the customer's id) splits the tail again.
      local second = string.find(post[i], MARK, 1, true)
      mid[i], post[i] = string.sub(post[i], 1, second - 1), string.sub(post[i], second + #MARK)
    end
  end
end

local function next_item()
  counter = counter + 1
  local i = math.random(POOL)
  if hot then
    return pre[i] .. counter .. mid[i] .. counter .. post[i]
  end
  return pre[i] .. counter .. post[i]
end

function request()
  if batch > 0 then
    local items = {}
    for i = 1, batch do items[i] = next_item() end
    return wrk.format("POST", nil, headers,
      '{"interactions": [' .. table.concat(items, ",") .. ']}')
  end
  return next_item()
end

if hot then
  -- Per thread (wrk's done() reads them with thread:get): the 200 answers,
  -- and those whose gesture is granted, with its value in milli-units. A
  -- refused or degraded answer has "gesture":null.
  answered, granted, granted_milli = 0, 0, 0
  function response(status, headers, body)
    if status ~= 200 then return end
    answered = answered + 1
    local value = string.match(body, '"gesture":{[^}]-"value":([%d.eE+-]+)')
    if value then
      granted = granted + 1
      granted_milli = granted_milli + math.floor(tonumber(value) * 1000 + 0.5)
    end
  end
end

function done(summary, latency, requests)
  local told = ""
  if hot then
    local a, g, m = 0, 0, 0
    for _, t in ipairs(threads) do
      a, g, m = a + t:get("answered"), g + t:get("granted"), m + t:get("granted_milli")
    end
    told = string.format(" answered=%d granted=%d granted_milli=%d", a, g, m)
  end
  -- One machine-readable line for scripts/load.sh.
  io.write(string.format(
    "RESULT requests=%d duration_us=%d errors=%d p50_us=%d p99_us=%d p999_us=%d non2xx_status=%d%s\n",
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write +
      summary.errors.status + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    summary.errors.status, told))
end
