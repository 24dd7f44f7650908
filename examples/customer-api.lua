-- customer-api.lua: relay for authenticated senders only when the
-- customer API says the account may send. The hook waits for the answer
-- without blocking the relay; a slow or broken API defers (451) rather
-- than letting mail through unchecked.
relais.config {
  listen = { "127.0.0.1:2525" },
  lua = { max_hook_time = 5 },
}

local api = relais.env("CUSTOMER_API", "http://127.0.0.1:8080")

relais.on("auth", function(session, creds)
  return creds.username == "app" and creds.password == relais.env("APP_PASSWORD", "")
end)

relais.on("mail", function(session, sender)
  local res, err = relais.http.request {
    url = api .. "/may-send?account=" .. (session.auth_user or "") .. "&sender=" .. sender.address,
    headers = { Authorization = "Bearer " .. relais.env("CUSTOMER_API_TOKEN", "") },
    timeout = 2,
  }
  if not res then
    relais.log.warn("customer API unavailable", err)
    return relais.tempfail(451, "4.3.0 Cannot check the account now; try again later")
  end
  if res.status ~= 200 then
    return relais.reject(550, "5.7.1 This account may not send as " .. sender.address)
  end
end)
