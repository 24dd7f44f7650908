---@meta relais
-- LuaLS definitions for the Relais policy API (https://luals.github.io).
-- Point your editor at this folder (see .luarc.json) to get completion and
-- type checks in policies. Keep in sync with the API: a test checks that
-- every function of the `relais` table is declared here.

---@class relais.Verdict
---@field verdict "accept"|"reject"|"tempfail"|"disconnect"|"discard"
---@field code integer?
---@field text string?

---@class relais.Target
---@field kind "maildir"|"smarthost"|"mx"
---@field path string?         maildir
---@field name string?         smarthost
---@field host string?         smarthost
---@field port integer?        smarthost

---@class relais.SmarthostOptions
---@field name string?                    shown in logs and `relais queue show` (default host:port)
---@field host string                     name or IP address
---@field port integer?                   default 25
---@field tls "none"|"starttls"|"implicit"|"opportunistic"?  default "starttls" (required and verified)
---@field verify_cert boolean?             default true (false for "opportunistic")
---@field ca_file string?                  PEM CA certificates; default the system store
---@field auth { username: string, password: string?, mechanism: "PLAIN"|"LOGIN"|"XOAUTH2"?, token: (fun(): string)? }?
---@field allow_insecure_auth boolean?     send credentials with tls = "none"
---@field max_recipients integer?          recipients per transaction (more are split)
---@field max_message_size integer?        larger messages routed here are refused at DATA
---@field headers table<string, string>?   header fields added to every message sent here
---@field max_connections integer?        default 10
---@field rate number?                    messages per second at most
---@field messages_per_connection integer? default 100
---@field timeout number?                 seconds per reply, default 120
---@field connect_timeout number?         seconds for the TCP connection and the greeting, default 30
---@field idle_timeout number?            seconds an unused connection is kept, default 10
---@field health { failures: integer?, down_min: number?, down_max: number? }?  circuit breaker, default 3 failures, 10 s, 600 s
---@field quota { per_minute: integer?, per_hour: integer?, per_day: integer? }?  messages per UTC window, kept across restarts
---@field dkim relais.DKIMSigner|relais.DKIMSigner[]?  sign what is sent here (signatures made once, at acceptance)
---@field shared boolean?                 rate, quota and max_connections counted across the cluster's nodes (relais.config cluster)

---@class relais.Session
---@field id string
---@field remote_ip string
---@field remote_port integer
---@field local_ip string
---@field local_port integer
---@field helo string?         the HELO/EHLO name once accepted
---@field tls boolean
---@field tls_version string?  "TLSv1.3", once TLS is up
---@field tls_cipher string?
---@field auth_user string?    nil when not authenticated
---@field relay_allowed boolean remote IP in relay_networks, or authenticated
---@field notes table          kept for the whole connection

---@class relais.Address
---@field address string       assignable in mail and rcpt hooks: rewrites the envelope ("" is the null sender)
---@field localpart string
---@field domain string        lower-cased
---@field params table<string, string|true> MAIL/RCPT ESMTP parameters

---@class relais.HeaderField
---@field name string
---@field value string

---@class relais.Message
---@field id string            queue id
---@field sender string
---@field recipients string[]
---@field size integer
---@field notes table          kept from the data hook to the route hooks
---@field is_bounce boolean    in route: a report Relais made (bounce, delay or success notice; sender is "")
local Message = {}
---@param name string
---@return string? value the first field of that name, unfolded
function Message:header(name) end
---@param name string?
---@return string[]|relais.HeaderField[] values all values of that name; all fields when name is nil
function Message:headers(name) end
---Adds a field at the top of the header section (data hook only).
---@param name string
---@param value string
function Message:add_header(name, value) end
---Adds a field at the end of the header section (data hook only).
---@param name string
---@param value string
function Message:append_header(name, value) end
---Replaces every field of that name by one (data hook only).
---@param name string
---@param value string
function Message:set_header(name, value) end
---Removes every field of that name (data hook only).
---@param name string
---@return integer removed
function Message:remove_header(name) end
---@return string body the message body, after the header section
function Message:body() end
---@param address string
function Message:add_recipient(address) end
---@param address string
---@return boolean removed
function Message:remove_recipient(address) end
---Data stage: sign this message with `signer` for every target (maildir included).
---@param signer relais.DKIMSigner
function Message:dkim_sign(signer) end

---@class relais.DKIMSigner
---@field domain string
---@field selector string
---@field dns_name string     "<selector>._domainkey.<domain>"
---@field dns_record string   the TXT record to publish there

---@class relais.Config
---@field hostname string?
---@field listen string[]?            "HOST:PORT" listeners
---@field listen_tls string[]?        implicit TLS listeners
---@field tls { cert: string, key: string, groups: string[]? }?  PEM files; STARTTLS is offered with them; groups default X25519, P-256, P-384
---@field spool string?               spool folder; the default maildir is its sibling "mail"
---@field maildir string?             the default local maildir
---@field relay_networks string[]?    CIDRs whose clients may relay
---@field max_message_size integer?
---@field max_recipients integer?
---@field max_connections integer?
---@field max_connections_per_ip integer?
---@field max_errors integer?
---@field greeting_delay number?      seconds, for clients outside relay_networks
---@field command_timeout number?
---@field data_timeout number?
---@field default_route relais.Target|relais.Target[]?
---@field lua { max_instructions: integer?, max_memory: integer?, max_hook_time: number? }?  max_hook_time: seconds one hook call may take, waits included (default 10; past it 451 4.3.0)
---@field cluster { redis: string, node: string?, password: string?, username: string?, db: integer?, timeout: number?, lease: number? }?  share the limits of `shared = true` smarthosts with other nodes through Redis; node defaults to the hostname; lease: seconds a killed node's connections stay counted (default 30)
---@field dns { servers: string[]?, timeout: number? }?  servers for relais.dns ("HOST:PORT"; default those of /etc/resolv.conf), seconds per server (default 2)
---@field admin string|{ listen: string?, token: string? }?  the admin HTTP endpoint (metrics, health, queue API)
---@field log_format "text"|"json"?
---@field header_syntax "strict"|"accept"?  refuse (default) or pass header lines that are neither fields nor continuations
---@field max_data_time number?   seconds a DATA/BDAT transfer may take, plus 1 s per 10 KiB (default 600)
---@field max_session_time number? seconds a session may last (default 3600)
---@field queue { retry_min: number?, retry_max: number?, max_age: number?, delay_notice: number?, delay_notice_all: boolean? }?  seconds

---@alias relais.Stage "connect"|"helo"|"auth"|"mail"|"rcpt"|"data"|"route"

---@class relais.Credentials
---@field username string
---@field password string
---@field mechanism "PLAIN"|"LOGIN"

---@class relais
---@field log relais.Log
---@field dns relais.DNS
---@field http relais.HTTP
relais = {}

---Lookups that make the hook wait (not the relay); answers are cached for their TTL.
---@class relais.DNS
local DNS = {}

---@alias relais.DNSType "A"|"AAAA"|"MX"|"TXT"|"PTR"|"CNAME"|"NS"|"TLSA"

---Records of `type` for `name` (a CNAME chain is followed). A and AAAA: address strings; MX: { preference, host }
---sorted by preference; TXT: one string per record (its strings joined); PTR (name may be an IP address), CNAME, NS:
---host names; TLSA: { usage, selector, matching_type, data (hex) }. An empty list when the name has no such records.
---@param name string
---@param type relais.DNSType?  default "A"
---@return (string|table)[]? records
---@return "NXDOMAIN"|"SERVFAIL"|"timeout"|string? err
function DNS.lookup(name, type) end

---The name an address is looked up under in reverse: "4.3.2.1" for 1.2.3.4, nibbles for IPv6; nil if not an address.
---@param ip string
---@return string?
function DNS.reverse(ip) end

---@class relais.HTTP
local HTTP = {}

---@class relais.HTTPRequest
---@field url string                  http:// or https:// (verified against ca_file or the system store)
---@field method string?              default "GET"
---@field headers table<string, string>?
---@field body string?
---@field timeout number?             seconds for the connection and the whole exchange, default 10
---@field ca_file string?
---@field max_size integer?           largest body accepted, default 1 MiB
---@field follow_redirects integer?   redirects to follow (same scheme only), default 0

---@class relais.HTTPResponse
---@field status integer
---@field headers table<string, string>  lower-case names; repeated fields joined with ", "
---@field body string

---One request; the hook waits for the answer.
---@param request relais.HTTPRequest
---@return relais.HTTPResponse? response
---@return string? err  "connection refused", "timeout", ...
function HTTP.request(request) end

---@class relais.Redis
local Redis = {}

---Sends one command on this event loop's connection; the hook waits for the reply. Strings and integers come back
---as they are, a null reply as nil, arrays as lists (null items as false); an error reply is `nil, "ERR ..."`.
---@param command string
---@param ... string|number
---@return any value
---@return string? err
function Redis:call(command, ...) end

---A Redis client ("HOST:PORT", port 6379 by default); connects on first use, and again after a failure.
---@param address string
---@param options { password: string?, username: string?, db: integer?, timeout: number? }?  timeout: seconds per command, default 2
---@return relais.Redis
function relais.redis(address, options) end

---Looks `ip` up in DNS blocklists, in order: the first zone that lists it and the address it answered; nil when
---none does; nil and an error when none does and some could not be asked.
---@param ip string
---@param zones string|string[]
---@return string? zone
---@return string? code_or_err
function relais.dnsbl(ip, zones) end

---Counts one event under `key` in a fixed window of `window` seconds in Redis; returns the count in this window.
---@param redis relais.Redis
---@param key string
---@param window integer
---@return integer? count
---@return string? err
function relais.rate(redis, key, window) end

---@class relais.Log
---@field info fun(...: any)
---@field warn fun(...: any)
---@field error fun(...: any)

---Sets listeners, hostname, spool, relay networks and limits (load time only).
---@param config relais.Config
function relais.config(config) end

---Registers a hook; several per stage run in registration order until one returns a verdict.
---@overload fun(stage: "connect", fn: fun(session: relais.Session): relais.Verdict?)
---@overload fun(stage: "helo", fn: fun(session: relais.Session, name: string): relais.Verdict?)
---@overload fun(stage: "auth", fn: fun(session: relais.Session, creds: relais.Credentials): boolean|relais.Verdict?)
---@overload fun(stage: "mail", fn: fun(session: relais.Session, sender: relais.Address): relais.Verdict?)
---@overload fun(stage: "rcpt", fn: fun(session: relais.Session, rcpt: relais.Address): relais.Verdict?)
---@overload fun(stage: "data", fn: fun(session: relais.Session, msg: relais.Message): relais.Verdict?)
---@overload fun(stage: "route", fn: fun(msg: relais.Message, rcpt: relais.Address): relais.Target|relais.Target[]|relais.Verdict?)
---@param stage relais.Stage
---@param fn function
function relais.on(stage, fn) end

---@param text string?
---@return relais.Verdict
function relais.accept(text) end

---Default 550 5.7.1.
---@param code integer|string?
---@param text string?
---@return relais.Verdict
function relais.reject(code, text) end

---Default 451 4.7.1.
---@param code integer|string?
---@param text string?
---@return relais.Verdict
function relais.tempfail(code, text) end

---Default 421 4.7.0; the connection is closed.
---@param code integer|string?
---@param text string?
---@return relais.Verdict
function relais.disconnect(code, text) end

---Data stage: answer 250, deliver nothing.
---@return relais.Verdict
function relais.discard() end

---A provider preset: a complete smarthost (see `relais presets`); options override any field.
---@param name "sendgrid"|"ses"|"mailgun"|"postmark"|"gmail"|"google_relay"|"microsoft365"|"brevo"|"mailjet"|"sparkpost"|"resend"|"zoho"|"fastmail"|"icloud"|"yahoo"|"scaleway"|"ovh"|"proton_bridge"
---@param options table?  username, password, token, mechanism, region, secret_access_key, stream, and relais.smarthost fields
---@return relais.Target
function relais.preset(name, options) end

---An OAuth2 access-token source for auth.token (refresh-token grant over HTTPS, cached).
---@param options { token_url: string, client_id: string, client_secret: string?, refresh_token: string, scope: string?, ca_file: string? }
---@return userdata
function relais.oauth2(options) end

---The Amazon SES SMTP password for an IAM secret access key in a region.
---@param secret_access_key string
---@param region string
---@return string
function relais.ses_smtp_password(secret_access_key, region) end

---A DKIM signer (RFC 6376 rsa-sha256, RFC 8463 ed25519-sha256), read at load time; the key is never logged.
---@param options { domain: string, selector: string, key: string, algorithm: "rsa-sha256"|"ed25519-sha256"?, headers: string[]?, canonicalization: string? }  key: a PEM file (RSA >= 1024 bits, or Ed25519); headers default From, To, Subject, Date, Message-ID, Reply-To (oversigned), Cc, MIME-Version, Content-Type, ...; canonicalization default "relaxed/relaxed"
---@return relais.DKIMSigner
function relais.dkim(options) end

---An upstream SMTP server as a route target; return several in a list for failover.
---@param options relais.SmarthostOptions
---@return relais.Target
function relais.smarthost(options) end

---Direct delivery to each recipient domain's MX hosts (RFC 5321 5.1; null MX and NXDOMAIN bounce, DNS failures defer).
---@param options { port: integer?, tls: "opportunistic"|"starttls"|"none"?, dane: boolean?, mta_sts: boolean?, mta_sts_port: integer?, ca_file: string?, helo: string?, dkim: relais.DKIMSigner|relais.DKIMSigner[]?, max_connections: integer?, timeout: number?, connect_timeout: number? }?  port default 25; tls default "opportunistic"; dane authenticates MX hosts by DNSSEC-validated TLSA records (RFC 7672; wins over MTA-STS); mta_sts applies RFC 8461 policies; max_connections per MX host, default 5
---@return relais.Target
function relais.mx(options) end

---A local maildir as a route target.
---@param path string
---@return relais.Target
function relais.maildir(path) end

---@param name string
---@param default string?
---@return string?
function relais.env(name, default) end

---@param ip string
---@param networks string|string[]
---@return boolean
function relais.in_networks(ip, networks) end

---Reads a file beside the policy (load time only; the file is watched).
---@param path string
---@return string
function relais.read_file(path) end

---Reads a file's lines (load time only; the file is watched).
---@param path string
---@return string[]
function relais.read_lines(path) end

---@class relais.lists
---A set from a list (keys lower-cased).
---@field set fun(items: string[]): table<string, true>
---True when domain, or a domain it is under, is in the set.
---@field domain_in fun(domain: string, set: table<string, true>): boolean
