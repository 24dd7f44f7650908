-- Mailjet. https://dev.mailjet.com/smtp-relay/configuration/
-- Checked 2026-11-29. Username = API key, password = secret key.
return require("presets.common").define {
  id = "mailjet", description = "Mailjet (API key and secret key)",
  docs = "https://dev.mailjet.com/smtp-relay/configuration/", checked = "2026-11-29",
  host = "in-v3.mailjet.com", port = 587,
  username_hint = "the API key", password_hint = "the secret key",
}
