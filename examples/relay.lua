-- relay.lua: the annotated starting point for a Relais policy.
--
--   relais run examples/relay.lua        serve with this policy
--   relais check examples/relay.lua      load it and show what it does
--   relais simulate examples/relay.lua --from a@example.org --to b@example.com message.eml
--
-- The policy is a Lua 5.4 program. `relais` is a global; hooks registered
-- with relais.on(stage, fn) run at each stage of the SMTP conversation.
-- A hook returns a verdict (relais.accept/reject/tempfail/disconnect/discard)
-- or nil for "no opinion": the next hook of the stage, or the default, decides.

relais.config {
  hostname = "relay.example.test",           -- greeting and Received headers
  listen = { "127.0.0.1:2525" },             -- where to accept SMTP
  spool = "relais-data/spool",               -- queue; the default maildir is relais-data/mail
  relay_networks = { "127.0.0.0/8", "::1/128" },  -- clients that may relay
  max_message_size = 25 * 1024 * 1024,
  max_recipients = 1000,
}

-- Lists can live in files next to the policy; they are read at load time
-- and watched: editing them reloads the policy.
local blocked_domains = {}
for _, line in ipairs(relais.read_lines("blocked-domains.txt")) do
  if line ~= "" and not line:match("^#") then blocked_domains[line:lower()] = true end
end

-- connect: session has remote_ip, local_port, notes (a table for the whole connection) ...
relais.on("connect", function(session)
  session.notes.connected_at = os.time()
end)

-- helo: the name the client gave.
relais.on("helo", function(session, name)
  if name == "localhost" and not session.relay_allowed then
    return relais.reject(550, "5.7.1 Say who you are")
  end
end)

-- mail: the sender; sender.address can be rewritten, "" is the null sender.
relais.on("mail", function(session, sender)
  if sender.domain == "internal.example" then
    sender.address = sender.localpart .. "@example.com"   -- rewrite the envelope sender
  end
end)

-- rcpt: one call per recipient. Without a verdict, a recipient is accepted
-- only when session.relay_allowed (never an open relay by accident).
relais.on("rcpt", function(session, rcpt)
  if blocked_domains[rcpt.domain] then
    return relais.reject(550, "5.7.1 Recipient domain not served here")
  end
end)

-- data: the whole message, before the 250. Headers can be read and changed.
relais.on("data", function(session, msg)
  msg:add_header("X-Relayed-By", "relais")
  msg:remove_header("X-Internal")
end)

-- route: once per recipient, after data. Return a target, a list of targets
-- (failover order), relais.reject(...) or nil for the default route.
local archive = relais.maildir("relais-data/archive")
relais.on("route", function(msg, rcpt)
  if rcpt.domain == "archive.example" then return archive end
end)
