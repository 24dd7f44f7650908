-- network-reject.lua: refuse clients by network, at connect time.
relais.config {
  listen = { "127.0.0.1:2525" },
  relay_networks = { "127.0.0.0/8", "::1/128", "10.0.0.0/8" },
}

local blocked = { "192.0.2.0/24", "198.51.100.0/24", "2001:db8:bad::/48" }
local quarantine = { "10.66.0.0/16" }

relais.on("connect", function(session)
  if relais.in_networks(session.remote_ip, blocked) then
    return relais.reject(554, "5.7.1 Your network is not welcome here")
  end
end)

-- A softer rule: a quarantined subnet may connect but not send yet.
relais.on("mail", function(session, sender)
  if relais.in_networks(session.remote_ip, quarantine) then
    return relais.tempfail(450, "4.7.1 Your network is being checked; try later")
  end
end)
