-- The policy scripts/bench-hooks measures: a hook at every stage doing
-- what real policies do (an allowlist lookup, a header added, routing by
-- domain), delivering to the same maildir as the no-hook run.
relais.config { relay_networks = { "127.0.0.0/8" } }

local allowed = { ["example.org"] = true }
for i = 1, 1000 do allowed["customer" .. i .. ".example"] = true end
local blocked = { ["blocked.example"] = true }
local maildir = relais.maildir(relais.env("RELAIS_BENCH_MAILDIR", "relais-data/mail"))
local routes = { ["example.com"] = maildir, ["example.net"] = maildir }

relais.on("connect", function(session) session.notes.messages = 0 end)
relais.on("helo", function(session, name)
  if name == "" then return relais.reject(550, "5.7.1 Say who you are") end
end)
relais.on("mail", function(session, sender)
  if not allowed[sender.domain] then return relais.reject(553, "5.7.1 Sender not allowed") end
end)
relais.on("rcpt", function(session, rcpt)
  if blocked[rcpt.domain] then return relais.reject(550, "5.7.1 Recipient refused") end
end)
relais.on("data", function(session, msg)
  session.notes.messages = session.notes.messages + 1
  msg:add_header("X-Relayed-By", "relais")
end)
relais.on("route", function(msg, rcpt)
  return routes[rcpt.domain]
end)
