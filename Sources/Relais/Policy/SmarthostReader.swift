import RelaisLua

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

/// Reads `relais.smarthost{...}` (and what presets build) into a
/// `Smarthost`. The password or token function comes back separately, to
/// stay out of the spool.
enum SmarthostReader {
    static let keys = [
        "name", "host", "port", "tls", "max_connections", "rate", "messages_per_connection", "timeout", "idle_timeout",
        "verify_cert", "ca_file", "auth", "allow_insecure_auth", "max_recipients", "max_message_size", "headers",
        "connect_timeout", "health", "quota", "shared", "dkim",
    ]

    static func read(_ table: LuaTable) throws -> (Smarthost, SmarthostSecret?) {
        let fields = LuaTableReader(table, function: "relais.smarthost")
        try fields.rejectUnknownKeys(keys, listing: false)
        guard let host = fields.string("host"), !host.isEmpty, !host.contains(" ") else {
            throw fields.error("host is required (a name or an IP address)")
        }
        let tlsName = fields.string("tls") ?? UpstreamTLS.starttls.rawValue
        guard let tls = UpstreamTLS(rawValue: tlsName) else {
            throw fields.error("tls must be \"starttls\", \"implicit\", \"opportunistic\" or \"none\"")
        }
        let port = try fields.positiveInteger("port") ?? 25
        guard port < 65536 else { throw fields.error("port must be below 65536") }
        var rate: Double?
        if fields.has("rate") {
            guard let value = table["rate"].numberValue, value > 0 else {
                throw fields.error("rate must be a positive number of messages per second")
            }
            rate = value
        }
        let (username, mechanism, secret) = try readAuth(fields)
        let allowInsecure = try fields.flag("allow_insecure_auth", default: false)
        if username != nil && tls == .none && !allowInsecure {
            throw fields.error("credentials over tls = \"none\" need allow_insecure_auth = true")
        }
        let smarthost = Smarthost(
            name: fields.string("name") ?? "\(host):\(port)", host: host, port: port, tls: tls,
            verifyCertificate: try fields.flag("verify_cert", default: tls != .opportunistic),
            caFile: fields.string("ca_file"),
            authUsername: username, authMechanism: mechanism, allowInsecureAuth: allowInsecure,
            maxConnections: try fields.positiveInteger("max_connections") ?? 10, rate: rate,
            messagesPerConnection: try fields.positiveInteger("messages_per_connection") ?? 100,
            timeout: try fields.seconds("timeout", maximum: 3600) ?? 120,
            connectTimeout: try fields.seconds("connect_timeout", maximum: 3600) ?? 30,
            health: try readHealth(fields),
            quota: try readQuota(fields),
            idleTimeout: try fields.seconds("idle_timeout", maximum: 3600) ?? 10,
            maxRecipients: try fields.positiveInteger("max_recipients"),
            maxMessageSize: try fields.positiveInteger("max_message_size", below: Int64(Int32.max)),
            headers: try readHeaders(fields),
            shared: try fields.flag("shared", default: false) ? true : nil
        )
        return (smarthost, secret)
    }

    private static func readAuth(_ fields: LuaTableReader) throws -> (String?, SASLMechanism?, SmarthostSecret?) {
        guard let auth = try fields.table("auth", "auth must be a table") else { return (nil, nil, nil) }
        try auth.rejectUnknownKeys(["username", "password", "token", "mechanism"])
        let username = try auth.requiredString("username", "auth.username is required")
        var mechanism: SASLMechanism?
        if let name = auth.string("mechanism") {
            guard let known = SASLMechanism(rawValue: name.uppercased()) else {
                throw auth.error("auth.mechanism must be PLAIN, LOGIN or XOAUTH2")
            }
            mechanism = known
        }
        guard mechanism == .xoauth2 else {
            let password = try auth.requiredString(
                "password", "auth.password is required (use relais.env(\"NAME\") to keep it out of the file)")
            return (username, mechanism, .password(password))
        }
        switch auth.table["token"] {
        case .function(let function): return (username, mechanism, .token(function))
        case .object(let id): return (username, mechanism, .tokenObject(id))
        default:
            throw auth.error("XOAUTH2 needs auth.token, a function returning the access token or relais.oauth2{...}")
        }
    }

    private static func readHealth(_ fields: LuaTableReader) throws -> UpstreamHealthSettings {
        var settings = UpstreamHealthSettings()
        guard let health = try fields.table("health", "health must be { failures = ..., down_min = ..., down_max = ... }") else {
            return settings
        }
        try health.rejectUnknownKeys(["failures", "down_min", "down_max"])
        settings.failures = try health.positiveInteger("failures", below: 1000) ?? settings.failures
        settings.downMin = try health.seconds("down_min", maximum: 86400) ?? settings.downMin
        settings.downMax = try health.seconds("down_max", maximum: 7 * 86400) ?? max(settings.downMax, settings.downMin)
        guard settings.downMin <= settings.downMax else { throw health.error("health.down_min must not exceed health.down_max") }
        return settings
    }

    private static func readQuota(_ fields: LuaTableReader) throws -> UpstreamQuota? {
        guard let quota = try fields.table("quota", "quota must be { per_minute = ..., per_hour = ..., per_day = ... }") else {
            return nil
        }
        try quota.rejectUnknownKeys(["per_minute", "per_hour", "per_day"])
        let limits = UpstreamQuota(perMinute: try quota.positiveInteger("per_minute", below: Int64(Int32.max)),
                                   perHour: try quota.positiveInteger("per_hour", below: Int64(Int32.max)),
                                   perDay: try quota.positiveInteger("per_day", below: Int64(Int32.max)))
        return limits.windows.isEmpty ? nil : limits
    }

    private static func readHeaders(_ fields: LuaTableReader) throws -> [[String]]? {
        guard let headers = fields.table["headers"].tableValue else { return nil }
        return try headers.entries.map { entry in
            guard let name = entry.key.stringValue, let value = entry.value.stringValue,
                  !name.isEmpty, name.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }),
                  !value.contains("\r"), !value.contains("\n")
            else { throw fields.error("headers must map header names to one-line strings") }
            return [name, value]
        }.sorted { $0[0] < $1[0] }
    }
}
