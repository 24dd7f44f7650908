-- microsoft365.lua: relay everything through Microsoft 365 with XOAUTH2 (the token function runs for each new connection).
-- `relais presets microsoft365` shows the settings, the documentation and when they were checked.
-- Secrets come from the environment; the second argument of relais.env is only
-- a placeholder so that `relais check` loads this file anywhere.
relais.config { relay_networks = { "127.0.0.0/8", "::1/128" } }

local upstream = relais.preset("microsoft365", { username = "sender@example.com", mechanism = "XOAUTH2",
  token = function() return relais.env("M365_ACCESS_TOKEN", "placeholder") end })

relais.config { default_route = upstream }
