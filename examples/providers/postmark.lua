-- postmark.lua: relay everything through Postmark (the token is username and password; stream sets X-PM-Message-Stream).
-- `relais presets postmark` shows the settings, the documentation and when they were checked.
-- Secrets come from the environment; the second argument of relais.env is only
-- a placeholder so that `relais check` loads this file anywhere.
relais.config { relay_networks = { "127.0.0.0/8", "::1/128" } }

local upstream = relais.preset("postmark", { password = relais.env("POSTMARK_SERVER_TOKEN", "placeholder"), stream = "outbound" })

relais.config { default_route = upstream }
