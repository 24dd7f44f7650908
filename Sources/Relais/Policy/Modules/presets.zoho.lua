-- Zoho Mail. https://www.zoho.com/mail/help/zoho-smtp.html
-- Checked 2026-11-29. region: com (default), eu, in, com.au, jp, com.cn;
-- custom_domain = true uses smtppro.zoho.*. From must match the account or an alias.
-- 150 recipients per message on paid plans.
return require("presets.common").define {
  id = "zoho", description = "Zoho Mail (regions; smtppro for custom domains)",
  docs = "https://www.zoho.com/mail/help/zoho-smtp.html", checked = "2026-11-29",
  host = function(o, fail)
    local region = o.region or "com"
    local known = { com = true, eu = true, ["in"] = true, ["com.au"] = true, jp = true, ["com.cn"] = true }
    if not known[region] then fail("region must be one of com, eu, in, com.au, jp, com.cn") end
    return "smtp.zoho." .. region
  end,
  port = 587, implicit_ports = { [465] = true },
  username_hint = "the Zoho account address", password_hint = "the password or an app password",
  max_recipients = 150,
}
