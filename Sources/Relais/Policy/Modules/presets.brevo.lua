-- Brevo (Sendinblue). https://help.brevo.com/hc/en-us/articles/7924908994450
-- Checked 2026-11-29. Username = SMTP login, password = SMTP key.
return require("presets.common").define {
  id = "brevo", description = "Brevo (SMTP login and SMTP key)",
  docs = "https://help.brevo.com/hc/en-us/articles/7924908994450", checked = "2026-11-29",
  host = "smtp-relay.brevo.com", port = 587, implicit_ports = { [465] = true },
  username_hint = "your Brevo SMTP login", password_hint = "an SMTP key",
}
