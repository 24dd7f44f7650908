-- iCloud Mail. https://support.apple.com/en-us/102525
-- Checked 2026-11-29 [unverified: port and limits from secondary sources].
-- App-specific password; 1,000 messages/day, 500 recipients/message, 20 MB.
return require("presets.common").define {
  id = "icloud", description = "iCloud Mail (app-specific password) [partly unverified]",
  docs = "https://support.apple.com/en-us/102525", checked = "2026-11-29",
  host = "smtp.mail.me.com", port = 587,
  username_hint = "the iCloud address", password_hint = "an app-specific password",
  max_recipients = 500, max_message_size = 20 * 1024 * 1024, quota = { per_day = 1000 },
}
