import RelaisLua

/// An upstream SMTP server that `route` can send recipients to, with the
/// limits Relais keeps towards it. Stored with each queued message, so a
/// message is delivered the way it was routed even if the policy changes.
public struct Smarthost: Codable, Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var host: String
    public var port: Int
    /// `starttls` (required and verified), `implicit`, `opportunistic`
    /// (encrypt when offered, not verified) or `none`.
    public var tls: String
    public var verifyCertificate: Bool
    /// CA certificates (PEM) to trust instead of the system store.
    public var caFile: String?
    /// Login name and mechanism; the secret stays in the policy (never in
    /// the spool): see `SmarthostSecret`.
    public var authUsername: String?
    /// `PLAIN`, `LOGIN` or `XOAUTH2`; nil picks PLAIN or LOGIN as offered.
    public var authMechanism: String?
    /// Send credentials without TLS (only with `tls = "none"`).
    public var allowInsecureAuth: Bool
    public var maxConnections: Int
    /// Messages per second at most; nil for no limit.
    public var rate: Double?
    public var messagesPerConnection: Int
    /// Seconds to wait for each reply (and to connect).
    public var timeout: Double
    /// Seconds an idle connection is kept for reuse.
    public var idleTimeout: Double
    /// Recipients the provider takes per message: more are split into
    /// several transactions.
    public var maxRecipients: Int?
    /// Largest message the provider takes: larger ones are refused at DATA.
    public var maxMessageSize: Int?
    /// Header fields added to every message sent there (e.g. Postmark's
    /// `X-PM-Message-Stream`), as name and value.
    public var headers: [[String]]?

    public var description: String { "smarthost:\(name)(\(host):\(port))" }

    static let keys: Set<String> = [
        "name", "host", "port", "tls", "max_connections", "rate", "messages_per_connection", "timeout", "idle_timeout",
        "verify_cert", "ca_file", "auth", "allow_insecure_auth", "max_recipients", "max_message_size", "headers",
    ]

    /// Reads `relais.smarthost{...}`; errors name the field. The password or
    /// token function comes back separately, to stay out of the spool.
    static func parse(_ table: LuaTable) throws -> (Smarthost, SmarthostSecret?) {
        for key in table.stringKeys where !keys.contains(key) {
            throw LuaError("relais.smarthost: unknown key \(key.debugDescription)")
        }
        guard let host = table["host"].stringValue, !host.isEmpty, !host.contains(" ") else {
            throw LuaError("relais.smarthost: host is required (a name or an IP address)")
        }
        let tls = table["tls"].stringValue ?? "starttls"
        guard ["none", "starttls", "implicit", "opportunistic"].contains(tls) else {
            throw LuaError("relais.smarthost: tls must be \"starttls\", \"implicit\", \"opportunistic\" or \"none\"")
        }
        func flag(_ key: String, _ fallback: Bool) throws -> Bool {
            switch table[key] {
            case .nil: return fallback
            case .boolean(let value): return value
            default: throw LuaError("relais.smarthost: \(key) must be true or false")
            }
        }
        func positive(_ key: String, _ fallback: Int, below limit: Int64 = 1_000_000) throws -> Int {
            if table[key].isNil { return fallback }
            guard let value = table[key].integerValue, value > 0, value < limit else {
                throw LuaError("relais.smarthost: \(key) must be a positive integer")
            }
            return Int(value)
        }
        func seconds(_ key: String, _ fallback: Double) throws -> Double {
            if table[key].isNil { return fallback }
            guard let value = table[key].numberValue, value > 0, value <= 3600 else {
                throw LuaError("relais.smarthost: \(key) must be a number of seconds")
            }
            return value
        }
        let port = try positive("port", 25)
        guard port < 65536 else { throw LuaError("relais.smarthost: port must be below 65536") }
        var rate: Double?
        if !table["rate"].isNil {
            guard let value = table["rate"].numberValue, value > 0 else {
                throw LuaError("relais.smarthost: rate must be a positive number of messages per second")
            }
            rate = value
        }
        var username: String?
        var mechanism: String?
        var secret: SmarthostSecret?
        if !table["auth"].isNil {
            guard let auth = table["auth"].tableValue else { throw LuaError("relais.smarthost: auth must be a table") }
            for key in auth.stringKeys where !["username", "password", "token", "mechanism"].contains(key) {
                throw LuaError("relais.smarthost: unknown key auth.\(key) (known: username, password, token, mechanism)")
            }
            guard let name = auth["username"].stringValue, !name.isEmpty else {
                throw LuaError("relais.smarthost: auth.username is required")
            }
            username = name
            mechanism = auth["mechanism"].stringValue?.uppercased()
            guard mechanism == nil || ["PLAIN", "LOGIN", "XOAUTH2"].contains(mechanism ?? "") else {
                throw LuaError("relais.smarthost: auth.mechanism must be PLAIN, LOGIN or XOAUTH2")
            }
            if mechanism == "XOAUTH2" {
                switch auth["token"] {
                case .function(let function): secret = .token(function)
                case .object(let id): secret = .tokenObject(id)
                default:
                    throw LuaError("relais.smarthost: XOAUTH2 needs auth.token, a function returning the access token or relais.oauth2{...}")
                }
            } else {
                guard let password = auth["password"].stringValue, !password.isEmpty else {
                    throw LuaError("relais.smarthost: auth.password is required (use relais.env(\"NAME\") to keep it out of the file)")
                }
                secret = .password(password)
            }
        }
        let allowInsecure = try flag("allow_insecure_auth", false)
        if username != nil && tls == "none" && !allowInsecure {
            throw LuaError("relais.smarthost: credentials over tls = \"none\" need allow_insecure_auth = true")
        }
        var headers: [[String]]?
        if let table = table["headers"].tableValue {
            headers = try table.entries.map { entry in
                guard let name = entry.key.stringValue, let value = entry.value.stringValue,
                      !name.isEmpty, name.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }),
                      !value.contains("\r"), !value.contains("\n")
                else { throw LuaError("relais.smarthost: headers must map header names to one-line strings") }
                return [name, value]
            }.sorted { $0[0] < $1[0] }
        }
        let smarthost = Smarthost(
            name: table["name"].stringValue ?? "\(host):\(port)", host: host, port: port, tls: tls,
            verifyCertificate: try flag("verify_cert", tls != "opportunistic"), caFile: table["ca_file"].stringValue,
            authUsername: username, authMechanism: mechanism, allowInsecureAuth: allowInsecure,
            maxConnections: try positive("max_connections", 10), rate: rate,
            messagesPerConnection: try positive("messages_per_connection", 100),
            timeout: try seconds("timeout", 120), idleTimeout: try seconds("idle_timeout", 10),
            maxRecipients: table["max_recipients"].isNil ? nil : try positive("max_recipients", 1),
            maxMessageSize: table["max_message_size"].isNil ? nil : try positive("max_message_size", 1, below: Int64(Int32.max)),
            headers: headers
        )
        return (smarthost, secret)
    }
}

/// What proves who Relais is to an upstream: a password, or a Lua function
/// returning a fresh OAuth2 access token (called for each new connection).
/// Kept in the policy's Lua state, never written to the spool or a log.
enum SmarthostSecret {
    case password(String)
    case token(LuaReference)
    /// `relais.oauth2{...}` (by its object id while the policy loads).
    case tokenObject(Int)
    case oauth2(OAuth2TokenSource)
}

/// A credential as the delivery needs it: ready, or to be fetched over HTTPS.
enum Credential: Sendable {
    case ready(String)
    case oauth2(OAuth2TokenSource)
}
