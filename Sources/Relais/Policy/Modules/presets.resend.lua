-- Resend. https://resend.com/docs/send-with-smtp
-- Checked 2026-11-29. Username "resend", password = API key.
return require("presets.common").define {
  id = "resend", description = "Resend (username resend, API key)",
  docs = "https://resend.com/docs/send-with-smtp", checked = "2026-11-29",
  host = "smtp.resend.com", port = 587, implicit_ports = { [465] = true, [2465] = true },
  username = "resend", password_hint = "an API key",
}
