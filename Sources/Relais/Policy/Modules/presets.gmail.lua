-- Gmail / Google Workspace. https://support.google.com/a/answer/176600
-- Checked 2026-11-29. Full address with an app password (2-step verification), or
-- mechanism = "XOAUTH2" with a token (scope https://mail.google.com/). 100 recipients/message.
return require("presets.common").define {
  id = "gmail", description = "Gmail (full address; app password or XOAUTH2)",
  docs = "https://support.google.com/a/answer/176600", checked = "2026-11-29",
  host = "smtp.gmail.com", port = 587, implicit_ports = { [465] = true },
  username_hint = "the full Gmail address", password_hint = "an app password",
  max_recipients = 100, quota = { per_day = 2000 },
}
