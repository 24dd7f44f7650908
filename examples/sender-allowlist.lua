-- sender-allowlist.lua: relay only for senders in allowed domains.
-- Clients in relay_networks may relay, but only with a sender address in
-- one of these domains; everything else is refused at MAIL.
relais.config {
  listen = { "127.0.0.1:2525" },
  relay_networks = { "127.0.0.0/8", "::1/128" },
}

local allowed = { ["example.com"] = true, ["example.org"] = true }

relais.on("mail", function(session, sender)
  if sender.address == "" then return end               -- bounces are always welcome
  if not allowed[sender.domain] then
    return relais.reject(553, "5.7.1 Sender domain " .. sender.domain .. " may not send through this relay")
  end
end)
