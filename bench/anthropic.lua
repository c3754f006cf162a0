wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.body = '{"model":"bench","max_tokens":256,"system":"You are terse.","messages":[{"role":"user","content":"Say something about foxes."}]}'
