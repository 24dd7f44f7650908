-- Twilio SendGrid. https://www.twilio.com/docs/sendgrid/for-developers/sending-email/integrating-with-the-smtp-api
-- Checked 2026-11-29. From addresses must be verified sender identities.
return require("presets.common").define {
  id = "sendgrid", description = "Twilio SendGrid (username apikey, password = API key)",
  docs = "https://www.twilio.com/docs/sendgrid/for-developers/sending-email/integrating-with-the-smtp-api",
  checked = "2026-11-29",
  host = "smtp.sendgrid.net", port = 587, implicit_ports = { [465] = true },
  username = "apikey", password_hint = "your SendGrid API key",
  messages_per_connection = 5000,
}
