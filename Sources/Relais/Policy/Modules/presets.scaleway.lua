-- Scaleway Transactional Email. https://www.scaleway.com/en/docs/transactional-email/reference-content/smtp-configuration/
-- Checked 2026-11-29. Username = project id, password = IAM secret key; 10 recipients per email.
return require("presets.common").define {
  id = "scaleway", description = "Scaleway TEM (project id, IAM secret key)",
  docs = "https://www.scaleway.com/en/docs/transactional-email/reference-content/smtp-configuration/",
  checked = "2026-11-29",
  host = "smtp.tem.scaleway.com", port = 587, implicit_ports = { [465] = true, [2465] = true },
  username_hint = "the project id", password_hint = "an IAM secret key",
  max_recipients = 10,
}
