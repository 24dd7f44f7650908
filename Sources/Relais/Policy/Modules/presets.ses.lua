-- Amazon SES SMTP interface. https://docs.aws.amazon.com/ses/latest/dg/smtp-credentials.html
-- Checked 2026-11-29. Username is the IAM access key id; the SMTP password is the SMTP
-- password, or is derived from secret_access_key (SigV4, version 4) for the region.
-- Sandbox: 200 messages/24h, 1/s. 40 MB per message, 50 recipients per message.
return require("presets.common").define {
  id = "ses", description = "Amazon SES (region; username = access key id; SMTP password or secret_access_key)",
  docs = "https://docs.aws.amazon.com/ses/latest/dg/smtp-credentials.html", checked = "2026-11-29",
  host = function(o, fail)
    if not o.region then fail("set region, e.g. \"eu-west-1\"") end
    return "email-smtp." .. o.region .. ".amazonaws.com"
  end,
  port = 587, implicit_ports = { [465] = true, [2465] = true },
  username_hint = "the IAM access key id",
  password = function(o, fail)
    if o.password then return o.password end
    if o.secret_access_key then return relais.ses_smtp_password(o.secret_access_key, o.region) end
    fail("set password (the SES SMTP password) or secret_access_key (the IAM secret access key)")
  end,
  max_recipients = 50, max_message_size = 40 * 1024 * 1024,
}
