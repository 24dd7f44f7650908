-- header-rewriting.lua: tidy headers before mail leaves the company.
relais.config {
  listen = { "127.0.0.1:2525" },
  relay_networks = { "127.0.0.0/8", "::1/128" },
}

-- Headers that reveal the inside of the network.
local internal = { "X-Internal", "X-Originating-IP", "X-Mailer" }

relais.on("data", function(session, msg)
  for _, name in ipairs(internal) do msg:remove_header(name) end
  -- One Organization header, whatever the client sent.
  msg:set_header("Organization", "Example Ltd")
  -- Tag the subject once.
  local subject = msg:header("Subject") or ""
  if not subject:find("^%[external%]") then
    msg:set_header("Subject", "[external] " .. subject)
  end
  msg:append_header("X-Relay-Policy", "header-rewriting")
  msg.notes.tagged = true
end)

relais.on("route", function(msg, rcpt)
  if msg.notes.tagged then relais.log.info("routing tagged message", msg.id, "to", rcpt.address) end
end)
