-- mailgun.lua: relay everything through Mailgun, EU region.
-- `relais presets mailgun` shows the settings, the documentation and when they were checked.
-- Secrets come from the environment; the second argument of relais.env is only
-- a placeholder so that `relais check` loads this file anywhere.
relais.config { relay_networks = { "127.0.0.0/8", "::1/128" } }

local upstream = relais.preset("mailgun", { region = "eu", username = "postmaster@mg.example.com", password = relais.env("MAILGUN_SMTP_PASSWORD", "placeholder") })

relais.config { default_route = upstream }
