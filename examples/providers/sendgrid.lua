-- sendgrid.lua: relay everything through SendGrid.
-- `relais presets sendgrid` shows the settings, the documentation and when they were checked.
-- Secrets come from the environment; the second argument of relais.env is only
-- a placeholder so that `relais check` loads this file anywhere.
relais.config { relay_networks = { "127.0.0.0/8", "::1/128" } }

local upstream = relais.preset("sendgrid", { password = relais.env("SENDGRID_API_KEY", "SG.placeholder") })

relais.config { default_route = upstream }
