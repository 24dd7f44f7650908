-- Helpers built on relais.dns and relais.redis, installed in every policy
-- state before the policy runs. Plain Lua: read them as examples.

--- Looks `ip` up in each DNS blocklist zone in turn (RFC 5782: reversed
--- octets, or IPv6 nibbles, under the zone). Returns the first zone that
--- lists it and the address it answered (`"zen.example", "127.0.0.2"`);
--- nil when none does; `nil, err` when none does and some could not be asked.
--- Answers outside 127.0.0.0/8, and 127.255.255.x (a zone's own error
--- codes, such as "query refused"), are not listings.
function relais.dnsbl(ip, zones)
  if type(zones) == "string" then zones = { zones } end
  if type(ip) ~= "string" then error("relais.dnsbl expects an IP address (a string), like session.remote_ip", 2) end
  if type(zones) ~= "table" then error("relais.dnsbl expects a zone or a list of zones", 2) end
  local reversed = relais.dns.reverse(ip)
  if not reversed then return nil, "not an IP address: " .. tostring(ip) end
  local failures = {}
  for _, zone in ipairs(zones) do
    local answers, err = relais.dns.lookup(reversed .. "." .. zone, "A")
    if answers then
      for _, address in ipairs(answers) do
        if address:match("^127%.") and not address:match("^127%.255%.255%.") then return zone, address end
      end
      if #answers > 0 then failures[#failures + 1] = zone .. ": answered " .. answers[1] end
    elseif err ~= "NXDOMAIN" then
      failures[#failures + 1] = zone .. ": " .. err
    end
  end
  if #failures > 0 then return nil, table.concat(failures, "; ") end
  return nil
end

local count_script = [[
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
]]

--- Counts one event under `key` in a fixed window of `window` seconds, in
--- Redis (atomically: one script does INCR and, for the first event of a
--- window, EXPIRE). Returns the events in this window so far, this one
--- included, or `nil, err` when Redis cannot be reached.
function relais.rate(redis, key, window)
  if type(key) ~= "string" or type(window) ~= "number" or window < 1 then
    error("relais.rate expects (redis, key, window_seconds)", 2)
  end
  return redis:call("EVAL", count_script, 1, key, math.floor(window))
end
