/// The provider presets, Lua modules `presets.<name>` shipped in the binary.
/// Each is data (host, ports, TLS, username convention, limits, headers,
/// where the facts come from and when they were checked) handed to
/// `presets.common`, which builds the `relais.smarthost` table; every field
/// can be overridden.
enum PresetSources {
    static let common = #"""
        -- presets.common: turns a preset's facts and the operator's options
        -- into a relais.smarthost table.
        local common = {}

        local smarthost_keys = {
          "name", "host", "port", "tls", "verify_cert", "ca_file", "max_connections", "rate",
          "messages_per_connection", "timeout", "idle_timeout", "max_recipients", "max_message_size",
          "allow_insecure_auth", "headers",
        }

        local function fail(preset, message)
          error(string.format('relais.preset("%s"): %s', preset.id, message), 0)
        end

        function common.define(preset)
          function preset.build(options)
            options = options or {}
            local known = { username = true, password = true, token = true, mechanism = true, region = true,
                            secret_access_key = true, stream = true }
            for _, key in ipairs(smarthost_keys) do known[key] = true end
            for key in pairs(options) do
              if not known[key] then fail(preset, "unknown option " .. tostring(key)) end
            end
            local host = preset.host
            if type(host) == "function" then host = host(options, function(m) fail(preset, m) end) end
            local port = options.port or preset.port
            local tls = options.tls or (preset.implicit_ports and preset.implicit_ports[port] and "implicit") or preset.tls or "starttls"
            local auth
            if preset.auth ~= false then
              local username = options.username or preset.username
              if type(username) == "function" then username = username(options) end
              if not username then fail(preset, "set username (" .. (preset.username_hint or "your login") .. ")") end
              local mechanism = options.mechanism or preset.mechanism
              if mechanism == "XOAUTH2" then
                if not options.token then fail(preset, "set token, a function returning an OAuth2 access token (see relais.oauth2)") end
                auth = { username = username, mechanism = "XOAUTH2", token = options.token }
              else
                local password = options.password
                if type(preset.password) == "function" then password = preset.password(options, function(m) fail(preset, m) end) end
                if not password or password == "" then
                  fail(preset, "set password (" .. (preset.password_hint or "the SMTP password") .. ")")
                end
                auth = { username = username, password = password, mechanism = mechanism }
              end
            end
            local result = {
              name = preset.id, host = host, port = port, tls = tls, auth = auth,
              max_connections = preset.max_connections, rate = preset.rate,
              messages_per_connection = preset.messages_per_connection,
              max_recipients = preset.max_recipients, max_message_size = preset.max_message_size,
              verify_cert = preset.verify_cert, headers = preset.headers and preset.headers(options) or nil,
            }
            for _, key in ipairs(smarthost_keys) do
              if options[key] ~= nil then result[key] = options[key] end
            end
            return result
          end
          return preset
        end

        return common
        """#

    static let presets: [String: String] = [
        "sendgrid": #"""
            -- Twilio SendGrid. https://www.twilio.com/docs/sendgrid/for-developers/sending-email/integrating-with-the-smtp-api
            -- Checked 2026-11-29. From addresses must be verified sender identities.
            return require("presets.common").define {
              id = "sendgrid", description = "Twilio SendGrid (username apikey, password = API key)",
              docs = "https://www.twilio.com/docs/sendgrid/for-developers/sending-email/integrating-with-the-smtp-api",
              checked = "2026-11-29",
              host = "smtp.sendgrid.net", port = 587, implicit_ports = { [465] = true },
              username = "apikey", password_hint = "your SendGrid API key",
              messages_per_connection = 5000,
            }
            """#,
        "ses": #"""
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
            """#,
        "mailgun": #"""
            -- Mailgun. https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/send-smtp
            -- Checked 2026-11-29. Per-domain SMTP credentials; region "us" (default) or "eu". 25 MB.
            return require("presets.common").define {
              id = "mailgun", description = "Mailgun (region us or eu; per-domain SMTP login and password)",
              docs = "https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/send-smtp",
              checked = "2026-11-29",
              host = function(o, fail)
                local region = o.region or "us"
                if region == "us" then return "smtp.mailgun.org" end
                if region == "eu" then return "smtp.eu.mailgun.org" end
                fail("region must be \"us\" or \"eu\"")
              end,
              port = 587, implicit_ports = { [465] = true },
              username_hint = "the domain's SMTP login, e.g. postmaster@mg.example.com",
              password_hint = "the domain's SMTP password",
              max_message_size = 25 * 1024 * 1024,
            }
            """#,
        "postmark": #"""
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
            """#,
        "gmail": #"""
            -- Gmail / Google Workspace. https://support.google.com/a/answer/176600
            -- Checked 2026-11-29. Full address with an app password (2-step verification), or
            -- mechanism = "XOAUTH2" with a token (scope https://mail.google.com/). 100 recipients/message.
            return require("presets.common").define {
              id = "gmail", description = "Gmail (full address; app password or XOAUTH2)",
              docs = "https://support.google.com/a/answer/176600", checked = "2026-11-29",
              host = "smtp.gmail.com", port = 587, implicit_ports = { [465] = true },
              username_hint = "the full Gmail address", password_hint = "an app password",
              max_recipients = 100,
            }
            """#,
        "google_relay": #"""
            -- Google Workspace SMTP relay. https://support.google.com/a/answer/2956491
            -- Checked 2026-11-29. AUTH with a Workspace user and app password (relaying by IP
            -- allowlist needs no credentials: use relais.smarthost directly).
            -- 10,000 messages and 10,000 unique recipients per user per 24 h.
            return require("presets.common").define {
              id = "google_relay", description = "Google Workspace SMTP relay (smtp-relay.gmail.com)",
              docs = "https://support.google.com/a/answer/2956491", checked = "2026-11-29",
              host = "smtp-relay.gmail.com", port = 587, implicit_ports = { [465] = true },
              username_hint = "a Workspace user address", password_hint = "an app password",
            }
            """#,
        "microsoft365": #"""
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
              rate = 0.5,
            }
            """#,
        "brevo": #"""
            -- Brevo (Sendinblue). https://help.brevo.com/hc/en-us/articles/7924908994450
            -- Checked 2026-11-29. Username = SMTP login, password = SMTP key.
            return require("presets.common").define {
              id = "brevo", description = "Brevo (SMTP login and SMTP key)",
              docs = "https://help.brevo.com/hc/en-us/articles/7924908994450", checked = "2026-11-29",
              host = "smtp-relay.brevo.com", port = 587, implicit_ports = { [465] = true },
              username_hint = "your Brevo SMTP login", password_hint = "an SMTP key",
            }
            """#,
        "mailjet": #"""
            -- Mailjet. https://dev.mailjet.com/smtp-relay/configuration/
            -- Checked 2026-11-29. Username = API key, password = secret key.
            return require("presets.common").define {
              id = "mailjet", description = "Mailjet (API key and secret key)",
              docs = "https://dev.mailjet.com/smtp-relay/configuration/", checked = "2026-11-29",
              host = "in-v3.mailjet.com", port = 587,
              username_hint = "the API key", password_hint = "the secret key",
            }
            """#,
        "sparkpost": #"""
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
            """#,
        "resend": #"""
            -- Resend. https://resend.com/docs/send-with-smtp
            -- Checked 2026-11-29. Username "resend", password = API key.
            return require("presets.common").define {
              id = "resend", description = "Resend (username resend, API key)",
              docs = "https://resend.com/docs/send-with-smtp", checked = "2026-11-29",
              host = "smtp.resend.com", port = 587, implicit_ports = { [465] = true, [2465] = true },
              username = "resend", password_hint = "an API key",
            }
            """#,
        "zoho": #"""
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
            """#,
        "fastmail": #"""
            -- Fastmail. https://www.fastmail.help/hc/en-us/articles/1500000278342
            -- Checked 2026-11-29. 465 implicit TLS with an app password; 587 STARTTLS [unverified].
            return require("presets.common").define {
              id = "fastmail", description = "Fastmail (app password; 465 implicit TLS)",
              docs = "https://www.fastmail.help/hc/en-us/articles/1500000278342", checked = "2026-11-29",
              host = "smtp.fastmail.com", port = 465, implicit_ports = { [465] = true },
              username_hint = "the Fastmail address", password_hint = "an app password",
            }
            """#,
        "icloud": #"""
            -- iCloud Mail. https://support.apple.com/en-us/102525
            -- Checked 2026-11-29 [unverified: port and limits from secondary sources].
            -- App-specific password; 1,000 messages/day, 500 recipients/message, 20 MB.
            return require("presets.common").define {
              id = "icloud", description = "iCloud Mail (app-specific password) [partly unverified]",
              docs = "https://support.apple.com/en-us/102525", checked = "2026-11-29",
              host = "smtp.mail.me.com", port = 587,
              username_hint = "the iCloud address", password_hint = "an app-specific password",
              max_recipients = 500, max_message_size = 20 * 1024 * 1024,
            }
            """#,
        "yahoo": #"""
            -- Yahoo Mail. https://help.yahoo.com/kb/SLN4724.html
            -- Checked 2026-11-29. 465 implicit TLS with an app password.
            return require("presets.common").define {
              id = "yahoo", description = "Yahoo Mail (app password; 465 implicit TLS)",
              docs = "https://help.yahoo.com/kb/SLN4724.html", checked = "2026-11-29",
              host = "smtp.mail.yahoo.com", port = 465, implicit_ports = { [465] = true },
              username_hint = "the Yahoo address", password_hint = "an app password",
            }
            """#,
        "scaleway": #"""
            -- Scaleway Transactional Email. https://www.scaleway.com/en/docs/transactional-email/reference-content/smtp-configuration/
            -- Checked 2026-11-29. Username = project id, password = IAM secret key; 10 recipients per email.
            return require("presets.common").define {
              id = "scaleway", description = "Scaleway TEM (project id, IAM secret key)",
              docs = "https://www.scaleway.com/en/docs/transactional-email/reference-content/smtp-configuration/",
              checked = "2026-11-29",
              host = "smtp.tem.scaleway.com", port = 587, implicit_ports = { [465] = true, [2465] = true },
              username_hint = "the project id", password_hint = "an IAM secret key",
              max_recipients = 10,
            }
            """#,
        "ovh": #"""
            -- OVHcloud mail. https://help.ovhcloud.com/csm/en-web-hosting-configure-email-client
            -- Checked 2026-11-29. ssl0.ovh.net, 465 implicit TLS (587 STARTTLS also offered).
            return require("presets.common").define {
              id = "ovh", description = "OVHcloud (ssl0.ovh.net; 465 implicit TLS)",
              docs = "https://help.ovhcloud.com/csm/en-web-hosting-configure-email-client", checked = "2026-11-29",
              host = "ssl0.ovh.net", port = 465, implicit_ports = { [465] = true },
              username_hint = "the full address", password_hint = "the mailbox password",
            }
            """#,
        "proton_bridge": #"""
            -- Proton Mail Bridge on this machine. https://proton.me/support/bridge
            -- Checked 2026-11-29. 127.0.0.1:1025 with STARTTLS and the Bridge's self-signed
            -- certificate (verification off by default); username and password shown by Bridge.
            return require("presets.common").define {
              id = "proton_bridge", description = "Proton Mail Bridge (127.0.0.1:1025, self-signed certificate)",
              docs = "https://proton.me/support/bridge", checked = "2026-11-29",
              host = "127.0.0.1", port = 1025, verify_cert = false,
              username_hint = "the address Bridge shows", password_hint = "the password Bridge shows",
            }
            """#,
    ]
}
