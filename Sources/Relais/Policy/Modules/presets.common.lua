-- presets.common: turns a preset's facts and the operator's options
-- into a relais.smarthost table.
local common = {}

local smarthost_keys = {
  "name", "host", "port", "tls", "verify_cert", "ca_file", "max_connections", "rate",
  "messages_per_connection", "timeout", "idle_timeout", "max_recipients", "max_message_size",
  "allow_insecure_auth", "headers", "connect_timeout", "health", "quota", "shared", "dkim",
}

local function fail(preset, message)
  error(string.format('relais.preset("%s"): %s', preset.id, message), 0)
end

function common.define(preset)
  function preset.build(options)
    options = options or {}
    local known = { username = true, password = true, token = true, mechanism = true, region = true,
                    secret_access_key = true, stream = true }
    for _, key in ipairs(smarthost_keys) do known[key] = true end
    for key in pairs(options) do
      if not known[key] then fail(preset, "unknown option " .. tostring(key)) end
    end
    local host = preset.host
    if type(host) == "function" then host = host(options, function(m) fail(preset, m) end) end
    local port = options.port or preset.port
    local tls = options.tls or (preset.implicit_ports and preset.implicit_ports[port] and "implicit") or preset.tls or "starttls"
    local auth
    if preset.auth ~= false then
      local username = options.username or preset.username
      if type(username) == "function" then username = username(options) end
      if not username then fail(preset, "set username (" .. (preset.username_hint or "your login") .. ")") end
      local mechanism = options.mechanism or preset.mechanism
      if mechanism == "XOAUTH2" then
        if not options.token then fail(preset, "set token, a function returning an OAuth2 access token (see relais.oauth2)") end
        auth = { username = username, mechanism = "XOAUTH2", token = options.token }
      else
        local password = options.password
        if type(preset.password) == "function" then password = preset.password(options, function(m) fail(preset, m) end) end
        if not password or password == "" then
          fail(preset, "set password (" .. (preset.password_hint or "the SMTP password") .. ")")
        end
        auth = { username = username, password = password, mechanism = mechanism }
      end
    end
    local result = {
      name = preset.id, host = host, port = port, tls = tls, auth = auth,
      max_connections = preset.max_connections, rate = preset.rate,
      messages_per_connection = preset.messages_per_connection,
      max_recipients = preset.max_recipients, max_message_size = preset.max_message_size,
      verify_cert = preset.verify_cert, headers = preset.headers and preset.headers(options) or nil,
      quota = preset.quota,
    }
    for _, key in ipairs(smarthost_keys) do
      if options[key] ~= nil then result[key] = options[key] end
    end
    return result
  end
  return preset
end

return common
