import NIOCore
import RelaisLua

/// What `relais.config{...}` (or a command-line flag) sets; nil leaves the
/// default. Settings are applied in layers: defaults, the policy, the flags.
public struct PolicySettings: Sendable {
    public var hostname: String?
    public var listen: [String]?
    public var spool: String?
    public var maildir: String?
    public var relayNetworks: [IPNetwork]?
    public var maxMessageSize: Int?
    public var maxRecipients: Int?
    public var defaultRoute: [RouteTarget]?
    public var greetingDelay: TimeAmount?
    public var commandTimeout: TimeAmount?
    public var dataTimeout: TimeAmount?
    public var maxConnections: Int?
    public var maxConnectionsPerIP: Int?
    public var maxErrors: Int?
    public var luaInstructions: Int64?
    public var luaMemory: Int?
    public var queue: QueueSchedule?
    public var listenTLS: [String]?
    public var tlsCertificate: String?
    public var tlsKey: String?

    public init() {}

    /// Keys that the design names but later versions implement.
    static let laterKeys: [String: String] = [
        "admin": "the HTTP admin endpoint",
    ]

    /// Reads a `relais.config` table; throws with a message naming the key.
    static func parse(_ table: LuaTable, targets: (LuaValue) throws -> [RouteTarget]) throws -> PolicySettings {
        var settings = PolicySettings()
        for entry in table.entries {
            guard let key = entry.key.stringValue else { throw LuaError("relais.config: keys must be names") }
            let value = entry.value
            func string() throws -> String {
                guard let text = value.stringValue, !text.isEmpty else { throw LuaError("relais.config: \(key) must be a string") }
                return text
            }
            func strings() throws -> [String] {
                guard let table = value.tableValue, table.isArray else {
                    throw LuaError("relais.config: \(key) must be a list of strings, like { \"...\" }")
                }
                return try table.array.map { item in
                    guard let text = item.stringValue else { throw LuaError("relais.config: \(key) must hold strings") }
                    return text
                }
            }
            func positive() throws -> Int {
                guard let number = value.integerValue, number > 0, number <= Int64(Int32.max) else {
                    throw LuaError("relais.config: \(key) must be a positive integer")
                }
                return Int(number)
            }
            func seconds() throws -> TimeAmount {
                guard let number = value.numberValue, number >= 0, number < 7 * 86400 else {
                    throw LuaError("relais.config: \(key) must be a number of seconds")
                }
                return .nanoseconds(Int64(number * 1e9))
            }
            switch key {
            case "hostname": settings.hostname = try string()
            case "listen":
                settings.listen = try strings()
                for address in settings.listen ?? [] {
                    do { _ = try ServerConfiguration.socketAddress(address) } catch { throw LuaError("relais.config: \(error)") }
                }
            case "listen_tls":
                settings.listenTLS = try strings()
                for address in settings.listenTLS ?? [] {
                    do { _ = try ServerConfiguration.socketAddress(address) } catch { throw LuaError("relais.config: \(error)") }
                }
            case "tls":
                guard let tls = value.tableValue else { throw LuaError("relais.config: tls must be { cert = ..., key = ... }") }
                for name in tls.stringKeys where !["cert", "key"].contains(name) {
                    throw LuaError("relais.config: unknown key tls.\(name) (known: cert, key)")
                }
                guard let cert = tls["cert"].stringValue, let key = tls["key"].stringValue else {
                    throw LuaError("relais.config: tls needs cert and key (PEM files)")
                }
                settings.tlsCertificate = cert
                settings.tlsKey = key
            case "spool": settings.spool = try string()
            case "maildir": settings.maildir = try string()
            case "relay_networks":
                settings.relayNetworks = try strings().map { text in
                    guard let network = IPNetwork(cidr: text) else {
                        throw LuaError("relais.config: relay_networks: \(text.debugDescription) is not a network like 192.0.2.0/24")
                    }
                    return network
                }
            case "max_message_size": settings.maxMessageSize = try positive()
            case "max_recipients": settings.maxRecipients = try positive()
            case "max_connections": settings.maxConnections = try positive()
            case "max_connections_per_ip": settings.maxConnectionsPerIP = try positive()
            case "max_errors": settings.maxErrors = try positive()
            case "greeting_delay": settings.greetingDelay = try seconds()
            case "command_timeout": settings.commandTimeout = try seconds()
            case "data_timeout": settings.dataTimeout = try seconds()
            case "default_route": settings.defaultRoute = try targets(value)
            case "queue":
                guard let queue = value.tableValue else { throw LuaError("relais.config: queue must be a table") }
                settings.queue = try QueueSchedule.parse(queue)
            case "lua":
                guard let lua = value.tableValue else { throw LuaError("relais.config: lua must be a table") }
                for name in lua.stringKeys where !["max_instructions", "max_memory"].contains(name) {
                    throw LuaError("relais.config: unknown key lua.\(name) (known: max_instructions, max_memory)")
                }
                if let number = lua["max_instructions"].integerValue {
                    guard number >= 1000 else { throw LuaError("relais.config: lua.max_instructions must be at least 1000") }
                    settings.luaInstructions = number
                }
                if let number = lua["max_memory"].integerValue {
                    guard number >= 1 << 20 else { throw LuaError("relais.config: lua.max_memory must be at least 1 MiB") }
                    settings.luaMemory = Int(number)
                }
            default:
                if let feature = laterKeys[key] {
                    throw LuaError("relais.config: \(key) needs \(feature), which this version of Relais does not have yet")
                }
                throw LuaError("relais.config: unknown key \(key.debugDescription)")
            }
        }
        return settings
    }
}

extension ServerConfiguration {
    /// The configuration with every setting that is not nil applied.
    public func applying(_ settings: PolicySettings) -> ServerConfiguration {
        var result = self
        if let value = settings.hostname { result.hostname = value }
        if let value = settings.listen { result.listen = value }
        if let value = settings.spool {
            result.spoolDirectory = value
            result.maildirDirectory = DurableFiles.parentFolder(of: value) + "/mail"
        }
        if let value = settings.maildir { result.maildirDirectory = value }
        if let value = settings.relayNetworks { result.relayNetworks = value }
        if let value = settings.maxMessageSize { result.limits.maxMessageSize = value }
        if let value = settings.maxRecipients { result.limits.maxRecipients = value }
        if let value = settings.defaultRoute { result.defaultRoute = value }
        if let value = settings.greetingDelay { result.greetingDelay = value }
        if let value = settings.commandTimeout { result.commandTimeout = value }
        if let value = settings.dataTimeout { result.dataTimeout = value }
        if let value = settings.maxConnections { result.maxConnections = value }
        if let value = settings.maxConnectionsPerIP { result.maxConnectionsPerIP = value }
        if let value = settings.maxErrors { result.maxErrors = value }
        if let value = settings.luaInstructions { result.luaLimits.instructionsPerCall = value }
        if let value = settings.luaMemory { result.luaLimits.memoryBytes = value }
        if let value = settings.queue { result.queue = value }
        if let value = settings.listenTLS { result.listenTLS = value }
        if let value = settings.tlsCertificate { result.tlsCertificate = value }
        if let value = settings.tlsKey { result.tlsKey = value }
        return result
    }
}
