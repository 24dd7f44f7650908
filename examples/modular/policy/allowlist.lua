-- policy/allowlist.lua: sender domains allowed to relay.
local M = { domains = {} }

function M.allow(...)
  for _, domain in ipairs({ ... }) do M.domains[domain] = true end
end

relais.on("mail", function(session, sender)
  if sender.address ~= "" and not M.domains[sender.domain] then
    return relais.reject(553, "5.7.1 Sender not allowed")
  end
end)

return M
