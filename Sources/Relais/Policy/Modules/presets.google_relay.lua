-- Google Workspace SMTP relay. https://support.google.com/a/answer/2956491
-- Checked 2026-11-29. AUTH with a Workspace user and app password (relaying by IP
-- allowlist needs no credentials: use relais.smarthost directly).
-- 10,000 messages and 10,000 unique recipients per user per 24 h.
return require("presets.common").define {
  id = "google_relay", description = "Google Workspace SMTP relay (smtp-relay.gmail.com)",
  docs = "https://support.google.com/a/answer/2956491", checked = "2026-11-29",
  host = "smtp-relay.gmail.com", port = 587, implicit_ports = { [465] = true },
  username_hint = "a Workspace user address", password_hint = "an app password",
  quota = { per_day = 10000 },
}
