-- rate-limit.lua: at most `per_hour` messages per sender address per
-- hour, counted in Redis so that every relay of a cluster shares the
-- count. Past the limit, MAIL is deferred (451): the client retries later.
-- With Redis unreachable, mail goes on (and the log says so).
relais.config {
  listen = { "127.0.0.1:2525" },
  relay_networks = { "127.0.0.0/8", "::1/128" },
}

local per_hour = 100
local redis = relais.redis("127.0.0.1:6379", { timeout = 1 })

relais.on("mail", function(session, sender)
  if sender.address == "" then return end
  local count, err = relais.rate(redis, "relais:rate:" .. sender.address:lower(), 3600)
  if not count then
    relais.log.warn("rate counter unavailable; accepting", err)
    return
  end
  if count > per_hour then
    return relais.tempfail(451, "4.7.1 " .. sender.address .. " sent more than " .. per_hour .. " messages this hour")
  end
end)
