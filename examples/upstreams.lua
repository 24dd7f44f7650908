-- upstreams.lua: relay through smarthosts, with failover and per-domain routing.
--
-- Each recipient goes through the list its route returns, in order: when an
-- upstream cannot be reached, times out, or answers 4xx before accepting MAIL,
-- the next one is tried at once. When all fail, the recipient is retried
-- later (queue.retry_min .. retry_max, exponential backoff) until
-- queue.max_age, then bounced to the sender. A 5xx for a recipient is final.
--
-- TLS and authentication to upstreams come with a later version of Relais;
-- until then upstreams are plaintext (tls = "none"), e.g. a local Postfix
-- or an internal relay.
relais.config {
  listen = { "127.0.0.1:2525" },
  relay_networks = { "127.0.0.0/8", "::1/128" },
  queue = { retry_min = 60, retry_max = 3600, max_age = 5 * 86400 },
}

local primary = relais.smarthost {
  name = "primary", host = "10.0.0.25", port = 25, tls = "none",
  max_connections = 20,          -- at most 20 connections at once
  rate = 50,                     -- at most 50 messages per second
  messages_per_connection = 100, -- then a new connection
  timeout = 60,                  -- seconds to wait for each reply
}
local secondary = relais.smarthost { name = "secondary", host = "10.0.0.26", port = 25, tls = "none" }
local partners = relais.smarthost { name = "partners", host = "10.0.1.25", port = 2525, tls = "none" }

relais.config { default_route = { primary, secondary } }   -- failover order

local by_domain = {
  ["partner.example"] = partners,
  ["partner.example.net"] = partners,
}

relais.on("route", function(msg, rcpt)
  local upstream = by_domain[rcpt.domain]
  if upstream then return { upstream, primary } end
  -- nil: default_route, { primary, secondary }
end)
