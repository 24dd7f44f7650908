-- Microsoft 365 / Exchange Online. https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/how-to-set-up-a-multifunction-device-or-application-to-send-email-using-microsoft-365-or-office-365
-- Checked 2026-11-29. XOAUTH2 by default (scope https://outlook.office.com/SMTP.Send):
-- basic authentication for SMTP AUTH is disabled by default from the end of 2026 (MC786329).
-- 30 messages per minute, 10,000 recipients per day.
return require("presets.common").define {
  id = "microsoft365", description = "Microsoft 365 (smtp.office365.com; XOAUTH2 by default)",
  docs = "https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/how-to-set-up-a-multifunction-device-or-application-to-send-email-using-microsoft-365-or-office-365",
  checked = "2026-11-29",
  host = "smtp.office365.com", port = 587, mechanism = "XOAUTH2",
  username_hint = "the licensed mailbox address",
  rate = 0.5, quota = { per_minute = 30, per_day = 10000 },
}
