-- Yahoo Mail. https://help.yahoo.com/kb/SLN4724.html
-- Checked 2026-11-29. 465 implicit TLS with an app password.
return require("presets.common").define {
  id = "yahoo", description = "Yahoo Mail (app password; 465 implicit TLS)",
  docs = "https://help.yahoo.com/kb/SLN4724.html", checked = "2026-11-29",
  host = "smtp.mail.yahoo.com", port = 465, implicit_ports = { [465] = true },
  username_hint = "the Yahoo address", password_hint = "an app password",
}
