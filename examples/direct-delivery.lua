-- direct-delivery.lua: deliver to the recipients' MX hosts yourself, with
-- DANE and MTA-STS, and keep a smarthost for what direct delivery cannot do.
--
-- Direct delivery needs a sending IP address with a good reputation, a
-- reverse DNS name that matches the EHLO name (helo below), SPF for the
-- sender domains and, best, DKIM (relais.dkim, then dkim = signer here).
-- DANE (RFC 7672) needs a DNSSEC-validating resolver: Relais trusts the AD
-- bit of the servers in dns.servers, so run one on this machine (unbound).
-- A domain whose MX and TLSA records are signed then gets mandatory,
-- authenticated TLS; a bogus TLSA answer makes the mail wait. MTA-STS
-- (RFC 8461) covers the domains that publish a policy instead; DANE wins
-- where both apply.
relais.config {
  listen = { "127.0.0.1:2525" },
  relay_networks = { "127.0.0.0/8", "::1/128" },
  dns = { servers = { "127.0.0.1:53" }, timeout = 3 },
  queue = { retry_min = 300, retry_max = 3600, max_age = 5 * 86400 },
}

local direct = relais.mx {
  tls = "opportunistic",     -- STARTTLS when offered, unless DANE or MTA-STS ask for more
  dane = true,
  mta_sts = true,
  helo = "mail.example.org", -- the name the sending address's PTR record gives
  max_connections = 5,       -- per MX host
}
local smarthost = relais.smarthost { name = "fallback", host = "10.0.0.25", port = 25, tls = "none" }

relais.config { default_route = smarthost }

-- The domains delivered directly; everything else (and what no MX host of
-- these domains takes, after their MX hosts were tried) goes to the smarthost.
local direct_domains = { ["customers.example"] = true, ["partners.example"] = true }

relais.on("route", function(msg, rcpt)
  if msg.is_bounce then return nil end
  if direct_domains[rcpt.domain] then return { direct, smarthost } end
end)
