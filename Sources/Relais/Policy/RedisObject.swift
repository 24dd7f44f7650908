import NIOCore
import RelaisLua

/// What `relais.redis(address, options)` returns: `r:call(cmd, ...)` sends
/// one command on this loop's connection to that server and waits for the
/// reply (`value` or `nil, err`). Strings and integers come back as they
/// are, a null reply as nil, arrays as lists (null items as false).
final class RedisObject: LuaObject {
    let endpoint: RedisEndpoint
    private unowned let runtime: PolicyRuntime

    init(endpoint: RedisEndpoint, runtime: PolicyRuntime) {
        self.endpoint = endpoint
        self.runtime = runtime
    }

    var luaTypeName: String { "redis \(endpoint.addressText)" }
    var luaMethodNames: Set<String> { ["call"] }

    func luaField(_ name: String, state: LuaState) throws -> LuaValue { .nil }

    func luaCall(_ method: String, _ arguments: [LuaValue], state: LuaState) throws -> [LuaValue] {
        throw LuaError("redis:\(method) is not a method")
    }

    /// `r:call("INCR", "key")`: numbers become their decimal text, as redis-cli sends them.
    func luaCallPushing(_ method: String, _ arguments: [LuaValue], state: LuaState) throws -> Int {
        guard !arguments.isEmpty else { throw LuaError("redis:call expects a command, like r:call(\"GET\", \"key\")") }
        let command = try arguments.map { argument -> [UInt8] in
            switch argument {
            case .string(let text): return text.bytes
            case .integer(let number): return Array("\(number)".utf8)
            case .number(let number): return Array("\(number)".utf8)
            default: throw LuaError("redis:call: arguments must be strings or numbers, not \(argument.typeName)")
            }
        }
        let endpoint = endpoint
        return try runtime.wait("redis:call", service: "redis", { [runtime] io in
            runtime.redisClient(for: endpoint, on: io.loop).call(command)
        }, results: { [Self.luaValue($0, nested: false)] })
    }

    static func luaValue(_ value: RESPValue, nested: Bool) -> LuaValue {
        switch value {
        case .simple(let text), .error(let text): return .text(text)
        case .integer(let number): return .integer(number)
        case .bulk(let bytes): return .string(LuaString(bytes: bytes))
        case .null: return nested ? .boolean(false) : .nil
        case .array(let items): return .table(.array(items.map { luaValue($0, nested: true) }))
        }
    }

    /// `address` and the options table of `relais.redis(address, options)`.
    static func endpoint(_ address: LuaValue, _ options: LuaValue) throws -> RedisEndpoint {
        guard let text = address.stringValue else { throw LuaError("relais.redis expects an address like \"127.0.0.1:6379\"") }
        guard !options.isNil else { return try endpoint(text, LuaTableReader(LuaTable(), function: "relais.redis")) }
        guard let table = options.tableValue else { throw LuaError("relais.redis: options must be a table") }
        let fields = LuaTableReader(table, function: "relais.redis")
        try fields.rejectUnknownKeys(["password", "username", "db", "timeout"])
        return try endpoint(text, fields)
    }

    /// `address` (`HOST:PORT`, port 6379 by default) with `password`,
    /// `username`, `db` and `timeout` from `fields` (also `relais.config`'s `cluster`).
    static func endpoint(_ address: String, _ fields: LuaTableReader) throws -> RedisEndpoint {
        let socketAddress: SocketAddress
        do {
            socketAddress = try ServerConfiguration.socketAddress(address.contains(":") ? address : address + ":6379")
        } catch {
            throw fields.error("\(fields.prefix.isEmpty ? "" : fields.prefix + "redis: ")\(address.debugDescription) is not an address like \"127.0.0.1:6379\"")
        }
        var endpoint = RedisEndpoint(address: socketAddress)
        endpoint.password = fields.string("password")
        endpoint.username = fields.string("username")
        if fields.has("db") {
            guard let db = fields.table["db"].integerValue, (0...1_000_000).contains(db) else {
                throw fields.error("\(fields.prefix)db must be a database number")
            }
            endpoint.database = Int(db)
        }
        if let seconds = try fields.seconds("timeout", maximum: 3600) { endpoint.timeout = .nanoseconds(Int64(seconds * 1e9)) }
        return endpoint
    }
}
