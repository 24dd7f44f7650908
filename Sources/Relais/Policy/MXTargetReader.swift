import RelaisLua

/// Reads `relais.mx{...}` into an `MXTarget`.
enum MXTargetReader {
    static func read(_ fields: LuaTableReader) throws -> MXTarget {
        try fields.rejectUnknownKeys(["port", "tls", "helo", "dkim", "max_connections", "timeout", "connect_timeout",
                                      "dane", "mta_sts"])
        for key in ["dane", "mta_sts"] where try fields.flag(key, default: false) {
            throw fields.error("\(key) is not supported yet: direct delivery uses tls = \"opportunistic\" or \"starttls\"")
        }
        var target = MXTarget()
        target.port = try fields.positiveInteger("port", below: 65536) ?? 25
        if let name = fields.string("tls") {
            guard let tls = UpstreamTLS(rawValue: name), tls != .implicit else {
                throw fields.error("tls must be \"opportunistic\", \"starttls\" (required and verified) or \"none\"")
            }
            target.tls = tls
        }
        target.heloName = fields.string("helo")
        target.maxConnections = try fields.positiveInteger("max_connections") ?? target.maxConnections
        target.timeout = try fields.seconds("timeout", maximum: 3600) ?? target.timeout
        target.connectTimeout = try fields.seconds("connect_timeout", maximum: 3600) ?? target.connectTimeout
        return target
    }
}
