-- domain-routing.lua: each recipient domain to its own destination.
relais.config {
  listen = { "127.0.0.1:2525" },
  relay_networks = { "127.0.0.0/8", "::1/128" },
  -- Recipients no rule matches go here instead of relais-data/mail.
  default_route = relais.maildir("relais-data/other"),
}

local routes = {
  ["sales.example"]   = relais.maildir("relais-data/sales"),
  ["support.example"] = relais.maildir("relais-data/support"),
}

relais.on("route", function(msg, rcpt)
  if rcpt.domain == "closed.example" then
    return relais.reject(550, "5.1.2 closed.example no longer receives mail")
  end
  return routes[rcpt.domain]                             -- nil: default_route
end)
