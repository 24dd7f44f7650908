-- policy/tagging.lua: mark every relayed message.
relais.on("data", function(session, msg)
  msg:add_header("X-Relayed-By", "relais (" .. session.helo .. ")")
end)
