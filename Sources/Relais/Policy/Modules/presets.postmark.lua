-- Postmark. https://postmarkapp.com/developer/user-guide/send-email-with-smtp
-- Checked 2026-11-29. The server token is both username and password; the
-- X-PM-Message-Stream header picks the stream (default "outbound"). 10 MB, 50 recipients.
return require("presets.common").define {
  id = "postmark", description = "Postmark (server token as username and password; stream option)",
  docs = "https://postmarkapp.com/developer/user-guide/send-email-with-smtp", checked = "2026-11-29",
  host = "smtp.postmarkapp.com", port = 587,
  username = function(o) return o.username or o.password end,
  username_hint = "the server token", password_hint = "the server token",
  headers = function(o) return { ["X-PM-Message-Stream"] = o.stream or "outbound" } end,
  max_recipients = 50, max_message_size = 10 * 1024 * 1024,
}
