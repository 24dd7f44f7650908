-- dnsbl.lua: refuse clients listed in a DNS blocklist, at connect.
-- Trusted networks are never looked up. The lookups wait without blocking
-- the relay; answers are cached for their TTL. A blocklist that cannot be
-- asked (timeout, SERVFAIL) lets the client in: a blocklist outage must not
-- stop mail. Use a resolver that may query the list (Spamhaus refuses
-- queries from public resolvers).
relais.config {
  listen = { "127.0.0.1:2525" },
  relay_networks = { "10.0.0.0/8" },
  dns = { servers = { "127.0.0.1:53" }, timeout = 2 },
}

local zones = { "zen.spamhaus.org" }

relais.on("connect", function(session)
  if relais.in_networks(session.remote_ip, { "10.0.0.0/8" }) then return end
  local zone, code = relais.dnsbl(session.remote_ip, zones)
  if zone then
    relais.log.info("client listed", session.remote_ip, zone, code)
    return relais.reject(554, "5.7.1 Service unavailable; client host " .. session.remote_ip .. " listed in " .. zone)
  end
end)
