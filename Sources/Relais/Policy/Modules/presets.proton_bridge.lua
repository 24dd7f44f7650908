-- Proton Mail Bridge on this machine. https://proton.me/support/bridge
-- Checked 2026-11-29. 127.0.0.1:1025 with STARTTLS and the Bridge's self-signed
-- certificate (verification off by default); username and password shown by Bridge.
return require("presets.common").define {
  id = "proton_bridge", description = "Proton Mail Bridge (127.0.0.1:1025, self-signed certificate)",
  docs = "https://proton.me/support/bridge", checked = "2026-11-29",
  host = "127.0.0.1", port = 1025, verify_cert = false,
  username_hint = "the address Bridge shows", password_hint = "the password Bridge shows",
}
