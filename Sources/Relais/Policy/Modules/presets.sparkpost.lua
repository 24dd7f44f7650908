-- SparkPost (Bird). https://support.sparkpost.com/docs/getting-started/getting-started-sparkpost
-- Checked 2026-11-29. AUTH LOGIN, username SMTP_Injection, password = API key;
-- region "us" (default) or "eu"; at most 100 messages per connection.
return require("presets.common").define {
  id = "sparkpost", description = "SparkPost (region us or eu; username SMTP_Injection, API key)",
  docs = "https://support.sparkpost.com/docs/getting-started/getting-started-sparkpost", checked = "2026-11-29",
  host = function(o, fail)
    local region = o.region or "us"
    if region == "us" then return "smtp.sparkpostmail.com" end
    if region == "eu" then return "smtp.eu.sparkpostmail.com" end
    fail("region must be \"us\" or \"eu\"")
  end,
  port = 587, username = "SMTP_Injection", mechanism = "LOGIN", password_hint = "an API key",
  messages_per_connection = 100,
}
