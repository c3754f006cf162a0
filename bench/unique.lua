-- The small chat request of openai.lua, made distinct on every request (a run id and a
-- counter in the prompt): through a caching sidecar, every call is a miss.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local run = tostring(os.time()) .. "-" .. tostring(math.random(1, 1000000000))
local n = 0
request = function()
  n = n + 1
  local body = '{"model":"bench","messages":[{"role":"system","content":"You are terse."},'
    .. '{"role":"user","content":"Say something about foxes. ' .. run .. "-" .. n .. '"}]}'
  return wrk.format(nil, nil, nil, body)
end
