import RelaisLua

/// An upstream SMTP server that `route` can send recipients to, with the
/// limits Relais keeps towards it. Stored with each queued message, so a
/// message is delivered the way it was routed even if the policy changes.
public struct Smarthost: Codable, Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var host: String
    public var port: Int
    /// `none` for now; `starttls`, `implicit` and `opportunistic` come with TLS.
    public var tls: String
    public var maxConnections: Int
    /// Messages per second at most; nil for no limit.
    public var rate: Double?
    public var messagesPerConnection: Int
    /// Seconds to wait for each reply (and to connect).
    public var timeout: Double
    /// Seconds an idle connection is kept for reuse.
    public var idleTimeout: Double

    public var description: String { "smarthost:\(name)(\(host):\(port))" }

    static let keys: Set<String> = [
        "name", "host", "port", "tls", "max_connections", "rate", "messages_per_connection", "timeout", "idle_timeout",
    ]

    /// Reads `relais.smarthost{...}`; errors name the field.
    static func parse(_ table: LuaTable) throws -> Smarthost {
        for key in table.stringKeys where !keys.contains(key) {
            if ["auth", "verify_cert", "ca_file"].contains(key) {
                throw LuaError("relais.smarthost: \(key) needs TLS and authentication, which this version does not have yet")
            }
            throw LuaError("relais.smarthost: unknown key \(key.debugDescription)")
        }
        guard let host = table["host"].stringValue, !host.isEmpty, !host.contains(" ") else {
            throw LuaError("relais.smarthost: host is required (a name or an IP address)")
        }
        let tls = table["tls"].stringValue ?? "starttls"
        guard ["none", "starttls", "implicit", "opportunistic"].contains(tls) else {
            throw LuaError("relais.smarthost: tls must be \"starttls\", \"implicit\", \"opportunistic\" or \"none\"")
        }
        guard tls == "none" else {
            throw LuaError("relais.smarthost: tls = \"\(tls)\"\(table["tls"].isNil ? " (the default)" : "") needs TLS, "
                + "which this version does not have yet; set tls = \"none\" for a plaintext upstream")
        }
        func positive(_ key: String, _ fallback: Int) throws -> Int {
            if table[key].isNil { return fallback }
            guard let value = table[key].integerValue, value > 0, value < 1_000_000 else {
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
        return Smarthost(
            name: table["name"].stringValue ?? "\(host):\(port)", host: host, port: port, tls: tls,
            maxConnections: try positive("max_connections", 10), rate: rate,
            messagesPerConnection: try positive("messages_per_connection", 100),
            timeout: try seconds("timeout", 120), idleTimeout: try seconds("idle_timeout", 10)
        )
    }
}
