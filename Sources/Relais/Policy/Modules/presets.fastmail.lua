-- Fastmail. https://www.fastmail.help/hc/en-us/articles/1500000278342
-- Checked 2026-11-29. 465 implicit TLS with an app password; 587 STARTTLS [unverified].
return require("presets.common").define {
  id = "fastmail", description = "Fastmail (app password; 465 implicit TLS)",
  docs = "https://www.fastmail.help/hc/en-us/articles/1500000278342", checked = "2026-11-29",
  host = "smtp.fastmail.com", port = 465, implicit_ports = { [465] = true },
  username_hint = "the Fastmail address", password_hint = "an app password",
}
