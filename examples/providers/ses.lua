-- ses.lua: relay everything through Amazon SES (the SMTP password is derived from the secret access key).
-- `relais presets ses` shows the settings, the documentation and when they were checked.
-- Secrets come from the environment; the second argument of relais.env is only
-- a placeholder so that `relais check` loads this file anywhere.
relais.config { relay_networks = { "127.0.0.0/8", "::1/128" } }

local upstream = relais.preset("ses", { region = "eu-west-1", username = relais.env("SES_ACCESS_KEY_ID", "AKIAPLACEHOLDER"),
  secret_access_key = relais.env("SES_SECRET_ACCESS_KEY", "placeholder") })

relais.config { default_route = upstream }
