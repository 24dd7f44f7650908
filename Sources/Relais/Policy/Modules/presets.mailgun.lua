-- Mailgun. https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/send-smtp
-- Checked 2026-11-29. Per-domain SMTP credentials; region "us" (default) or "eu". 25 MB.
return require("presets.common").define {
  id = "mailgun", description = "Mailgun (region us or eu; per-domain SMTP login and password)",
  docs = "https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/send-smtp",
  checked = "2026-11-29",
  host = function(o, fail)
    local region = o.region or "us"
    if region == "us" then return "smtp.mailgun.org" end
    if region == "eu" then return "smtp.eu.mailgun.org" end
    fail("region must be \"us\" or \"eu\"")
  end,
  port = 587, implicit_ports = { [465] = true },
  username_hint = "the domain's SMTP login, e.g. postmaster@mg.example.com",
  password_hint = "the domain's SMTP password",
  max_message_size = 25 * 1024 * 1024,
}
