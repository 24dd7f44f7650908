-- relais.lists: helpers for allow and block lists.
local lists = {}

-- A set from a list: lists.set({ "a.example", "B.example" })["b.example"] == true
function lists.set(items)
  local set = {}
  for _, item in ipairs(items) do set[string.lower(item)] = true end
  return set
end

-- True when domain, or a domain it is under, is in the set:
-- lists.domain_in("mx.eu.example.com", lists.set({ "example.com" })) == true
function lists.domain_in(domain, set)
  domain = string.lower(domain)
  while domain do
    if set[domain] then return true end
    domain = domain:match("^[^.]+%.(.+)$")
  end
  return false
end

return lists
