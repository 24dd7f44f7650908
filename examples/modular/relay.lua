-- modular/relay.lua: a policy split into modules with require.
-- Modules live beside this file: require("policy.allowlist") loads
-- policy/allowlist.lua. Each module registers its own hooks; hooks of one
-- stage run in the order they were registered until one returns a verdict.
relais.config {
  listen = { "127.0.0.1:2525" },
  relay_networks = { "127.0.0.0/8", "::1/128" },
}

local allowlist = require("policy.allowlist")
allowlist.allow("example.com", "example.org")

require("policy.tagging")
