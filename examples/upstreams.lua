-- upstreams.lua: relay through smarthosts, with failover and per-domain routing.
--
-- Each recipient goes through the list its route returns, in order: when an
-- upstream cannot be reached, times out, or answers 4xx before accepting MAIL,
-- the next one is tried at once. When all fail, the recipient is retried
-- later (queue.retry_min .. retry_max, exponential backoff) until
-- queue.max_age, then bounced to the sender. A 5xx for a recipient is final.
-- An upstream that fails `health.failures` connections in a row is marked
-- down and skipped without waiting until a probe finds it back; one that
-- throttles (421, 4.7.x) is paused. These upstreams are plaintext
-- (tls = "none"), e.g. a local Postfix or an internal relay.
relais.config {
  listen = { "127.0.0.1:2525" },
  relay_networks = { "127.0.0.0/8", "::1/128" },
  queue = { retry_min = 60, retry_max = 3600, max_age = 5 * 86400,
            delay_notice = 4 * 3600 },  -- senders who asked (NOTIFY=DELAY) hear of a delay once
}

local primary = relais.smarthost {
  name = "primary", host = "10.0.0.25", port = 25, tls = "none",
  max_connections = 20,          -- at most 20 connections at once
  rate = 50,                     -- at most 50 messages per second
  messages_per_connection = 100, -- then a new connection
  timeout = 60,                  -- seconds to wait for each reply
  connect_timeout = 15,          -- seconds for the connection and the greeting
  health = { failures = 3, down_min = 10, down_max = 600 },  -- the circuit breaker
  quota = { per_day = 100000 },  -- messages per UTC day, kept across restarts
}
local secondary = relais.smarthost { name = "secondary", host = "10.0.0.26", port = 25, tls = "none" }
local partners = relais.smarthost { name = "partners", host = "10.0.1.25", port = 2525, tls = "none" }

relais.config { default_route = { primary, secondary } }   -- failover order

local by_domain = {
  ["partner.example"] = partners,
  ["partner.example.net"] = partners,
}

relais.on("route", function(msg, rcpt)
  -- Bounces and delay notices Relais makes come here too (sender ""):
  -- nil sends them on the default route like everything else.
  if msg.is_bounce then return nil end
  local upstream = by_domain[rcpt.domain]
  if upstream then return { upstream, primary } end
  -- nil: default_route, { primary, secondary }
end)
