-- brevo.lua: relay everything through Brevo.
-- `relais presets brevo` shows the settings, the documentation and when they were checked.
-- Secrets come from the environment; the second argument of relais.env is only
-- a placeholder so that `relais check` loads this file anywhere.
relais.config { relay_networks = { "127.0.0.0/8", "::1/128" } }

local upstream = relais.preset("brevo", { username = "login@example.com", password = relais.env("BREVO_SMTP_KEY", "placeholder") })

relais.config { default_route = upstream }
