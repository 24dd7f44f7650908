import NIOCore
import RelaisDNS
import RelaisLua

/// Reads a `relais.config{...}` table into `PolicySettings`; every error
/// names the key.
enum ConfigReader {
    static func read(_ table: LuaTable, targets: (LuaValue) throws -> [RouteTarget]) throws -> PolicySettings {
        let fields = LuaTableReader(table, function: "relais.config")
        var settings = PolicySettings()
        for entry in table.entries {
            guard let key = entry.key.stringValue else { throw fields.error("keys must be names") }
            let value = entry.value
            switch key {
            case "hostname": settings.hostname = try fields.requiredString(key, "\(key) must be a string")
            case "spool": settings.spool = try fields.requiredString(key, "\(key) must be a string")
            case "maildir": settings.maildir = try fields.requiredString(key, "\(key) must be a string")
            case "listen": settings.listen = try listenAddresses(fields, key)
            case "listen_tls": settings.listenTLS = try listenAddresses(fields, key)
            case "tls":
                guard let tls = try fields.table(key, "tls must be { cert = ..., key = ... }") else { break }
                try tls.rejectUnknownKeys(["cert", "key", "groups"])
                guard let cert = tls.string("cert"), let key = tls.string("key") else {
                    throw fields.error("tls needs cert and key (PEM files)")
                }
                settings.tlsCertificate = cert
                settings.tlsKey = key
                if tls.has("groups") { settings.tlsGroups = try strings(tls, "groups") }
            case "relay_networks":
                settings.relayNetworks = try strings(fields, key).map { text in
                    guard let network = IPNetwork(cidr: text) else {
                        throw fields.error("relay_networks: \(text.debugDescription) is not a network like 192.0.2.0/24")
                    }
                    return network
                }
            case "max_message_size": settings.maxMessageSize = try count(fields, key)
            case "max_recipients": settings.maxRecipients = try count(fields, key)
            case "max_connections": settings.maxConnections = try count(fields, key)
            case "max_connections_per_ip": settings.maxConnectionsPerIP = try count(fields, key)
            case "max_errors": settings.maxErrors = try count(fields, key)
            case "greeting_delay": settings.greetingDelay = try duration(fields, key)
            case "command_timeout": settings.commandTimeout = try duration(fields, key)
            case "data_timeout": settings.dataTimeout = try duration(fields, key)
            case "default_route": settings.defaultRoute = try targets(value)
            case "queue":
                guard let queue = try fields.table(key, "queue must be a table") else { break }
                settings.queue = try schedule(queue)
            case "lua":
                guard let lua = try fields.table(key, "lua must be a table") else { break }
                try lua.rejectUnknownKeys(["max_instructions", "max_memory", "max_hook_time"])
                if let seconds = try lua.seconds("max_hook_time", maximum: 3600) {
                    settings.maxHookTime = .nanoseconds(Int64(seconds * 1e9))
                }
                if let number = lua.table["max_instructions"].integerValue {
                    guard number >= 1000 else { throw fields.error("lua.max_instructions must be at least 1000") }
                    settings.luaInstructions = number
                }
                if let number = lua.table["max_memory"].integerValue {
                    guard number >= 1 << 20 else { throw fields.error("lua.max_memory must be at least 1 MiB") }
                    settings.luaMemory = Int(number)
                }
            case "dns":
                guard let dns = try fields.table(key, "dns must be { servers = { \"HOST:PORT\" }, timeout = SECONDS }") else { break }
                try dns.rejectUnknownKeys(["servers", "timeout"])
                if dns.has("servers") {
                    let servers = try strings(dns, "servers")
                    for server in servers {
                        do { _ = try DNSResolver.serverAddress(server) } catch {
                            throw fields.error("dns.servers: \(server.debugDescription) is not an address like \"127.0.0.1:53\"")
                        }
                    }
                    settings.dnsServers = servers
                }
                settings.dnsTimeout = try dns.seconds("timeout", maximum: 60).map { .nanoseconds(Int64($0 * 1e9)) }
            case "cluster":
                guard let cluster = try fields.table(key, "cluster must be { redis = \"HOST:PORT\", node = ..., password = ... }") else { break }
                settings.cluster = try self.cluster(cluster)
            case "admin":
                (settings.adminListen, settings.adminToken) = try admin(fields)
            case "header_syntax":
                switch fields.string(key) {
                case "strict": settings.strictHeaderSyntax = true
                case "accept": settings.strictHeaderSyntax = false
                default: throw fields.error("header_syntax must be \"strict\" or \"accept\"")
                }
            case "max_data_time": settings.maxDataTime = try duration(fields, key)
            case "max_session_time": settings.maxSessionTime = try duration(fields, key)
            case "log_format":
                let format = try fields.requiredString(key, "log_format must be \"text\" or \"json\"")
                guard let known = LogFormat(rawValue: format) else { throw fields.error("log_format must be \"text\" or \"json\"") }
                settings.logFormat = known
            default:
                throw fields.error("unknown key \(key.debugDescription)")
            }
        }
        return settings
    }

    private static func strings(_ fields: LuaTableReader, _ key: String) throws -> [String] {
        guard let list = fields.table[key].tableValue, list.isArray else {
            throw fields.error("\(fields.prefix)\(key) must be a list of strings, like { \"...\" }")
        }
        return try list.array.map { item in
            guard let text = item.stringValue else { throw fields.error("\(fields.prefix)\(key) must hold strings") }
            return text
        }
    }

    private static func listenAddresses(_ fields: LuaTableReader, _ key: String) throws -> [String] {
        let addresses = try strings(fields, key)
        for address in addresses {
            do { _ = try ServerConfiguration.socketAddress(address) } catch { throw fields.error("\(error)") }
        }
        return addresses
    }

    private static func count(_ fields: LuaTableReader, _ key: String) throws -> Int? {
        try fields.positiveInteger(key, below: Int64(Int32.max) + 1)
    }

    private static func duration(_ fields: LuaTableReader, _ key: String) throws -> TimeAmount? {
        try fields.seconds(key, maximum: 7 * 86400, allowZero: true).map { .nanoseconds(Int64($0 * 1e9)) }
    }

    /// `admin = "HOST:PORT"` or `admin = { listen = ..., token = ... }`; a
    /// listener off loopback needs a token.
    private static func admin(_ fields: LuaTableReader) throws -> (String, String?) {
        let listen: String
        var token: String?
        if let text = fields.string("admin") {
            listen = text
        } else {
            guard let admin = try fields.table("admin", "admin must be \"HOST:PORT\" or { listen = ..., token = ... }") else {
                throw fields.error("admin must be \"HOST:PORT\" or { listen = ..., token = ... }")
            }
            try admin.rejectUnknownKeys(["listen", "token"])
            listen = admin.string("listen") ?? "127.0.0.1:8025"
            token = admin.string("token")
            if token?.isEmpty == true { token = nil }
        }
        let address: SocketAddress
        do { address = try ServerConfiguration.socketAddress(listen) } catch { throw fields.error("admin: \(error)") }
        if token == nil, let ip = address.ipAddress, !IPNetwork.loopback.contains(ip: ip) {
            throw fields.error("admin.listen \(listen) is not a loopback address: set admin.token too")
        }
        return (listen, token)
    }

    /// `cluster = { redis, node, password, username, db, timeout, lease }`;
    /// the node defaults to the configured hostname (filled in later).
    private static func cluster(_ fields: LuaTableReader) throws -> ClusterSettings {
        try fields.rejectUnknownKeys(["redis", "node", "password", "username", "db", "timeout", "lease"])
        let address = try fields.requiredString("redis", "cluster.redis must be an address like \"127.0.0.1:6379\"")
        var settings = ClusterSettings(redis: try RedisObject.endpoint(address, fields), node: fields.string("node") ?? "")
        if let lease = try fields.seconds("lease", maximum: 3600) {
            guard lease >= 1 else { throw fields.error("cluster.lease must be at least 1 second") }
            settings.leaseSeconds = lease
        }
        return settings
    }

    private static func schedule(_ queue: LuaTableReader) throws -> QueueSchedule {
        try queue.rejectUnknownKeys(["retry_min", "retry_max", "max_age", "delay_notice", "delay_notice_all", "memory"])
        var schedule = QueueSchedule()
        let forever = Double.greatestFiniteMagnitude
        schedule.retryMin = try queue.seconds("retry_min", maximum: forever) ?? schedule.retryMin
        schedule.retryMax = try queue.seconds("retry_max", maximum: forever) ?? schedule.retryMax
        schedule.maxAge = try queue.seconds("max_age", maximum: forever) ?? schedule.maxAge
        schedule.delayNotice = try queue.seconds("delay_notice", maximum: forever) ?? schedule.delayNotice
        schedule.delayNoticeForAll = try queue.flag("delay_notice_all", default: false)
        schedule.memory = try count(queue, "memory") ?? schedule.memory
        guard schedule.retryMin <= schedule.retryMax else {
            throw queue.error("queue.retry_min must not exceed queue.retry_max")
        }
        return schedule
    }
}
