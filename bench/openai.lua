wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"bench","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say something about foxes."}]}'
