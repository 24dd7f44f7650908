-- OVHcloud mail. https://help.ovhcloud.com/csm/en-web-hosting-configure-email-client
-- Checked 2026-11-29. ssl0.ovh.net, 465 implicit TLS (587 STARTTLS also offered).
return require("presets.common").define {
  id = "ovh", description = "OVHcloud (ssl0.ovh.net; 465 implicit TLS)",
  docs = "https://help.ovhcloud.com/csm/en-web-hosting-configure-email-client", checked = "2026-11-29",
  host = "ssl0.ovh.net", port = 465, implicit_ports = { [465] = true },
  username_hint = "the full address", password_hint = "the mailbox password",
}
