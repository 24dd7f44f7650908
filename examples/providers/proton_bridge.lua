-- proton_bridge.lua: relay everything through Proton Mail Bridge running on this machine.
-- `relais presets proton_bridge` shows the settings, the documentation and when they were checked.
-- Secrets come from the environment; the second argument of relais.env is only
-- a placeholder so that `relais check` loads this file anywhere.
relais.config { relay_networks = { "127.0.0.0/8", "::1/128" } }

local upstream = relais.preset("proton_bridge", { username = "me@proton.me", password = relais.env("PROTON_BRIDGE_PASSWORD", "placeholder") })

relais.config { default_route = upstream }
