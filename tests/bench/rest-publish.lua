-- wrk script: POST /topics/<topic>/messages with a 100-byte payload, over
-- keep-alive connections (wrk's default). The topic comes from the
-- environment (REST_TOPIC, default "bench").
local topic = os.getenv("REST_TOPIC") or "bench"
wrk.method = "POST"
wrk.path = "/topics/" .. topic .. "/messages"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"payload":{"data":"' .. string.rep("x", 78) .. '"}}'

local errors = 0
function response(status, headers, body)
  if status ~= 201 then
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  io.write(string.format("non-201: %d\n", errors))
end
