import RelaisLua

/// Reads `relais.mx{...}` into an `MXTarget`.
enum MXTargetReader {
    static func read(_ fields: LuaTableReader) throws -> MXTarget {
        try fields.rejectUnknownKeys(["port", "tls", "helo", "dkim", "max_connections", "timeout", "connect_timeout",
                                      "dane", "mta_sts", "mta_sts_port", "ca_file"])
        var target = MXTarget()
        target.dane = try fields.flag("dane", default: false) ? true : nil
        target.mtaSTS = try fields.flag("mta_sts", default: false)
        target.mtaSTSPort = try fields.positiveInteger("mta_sts_port", below: 65536) ?? 443
        target.caFile = fields.string("ca_file")
        target.port = try fields.positiveInteger("port", below: 65536) ?? 25
        if let name = fields.string("tls") {
            guard let tls = UpstreamTLS(rawValue: name), tls != .implicit else {
                throw fields.error("tls must be \"opportunistic\", \"starttls\" (required and verified) or \"none\"")
            }
            target.tls = tls
        }
        if target.usesDANE && target.tls == .none {
            throw fields.error("dane = true needs TLS: it cannot go with tls = \"none\"")
        }
        target.heloName = fields.string("helo")
        target.maxConnections = try fields.positiveInteger("max_connections") ?? target.maxConnections
        target.timeout = try fields.seconds("timeout", maximum: 3600) ?? target.timeout
        target.connectTimeout = try fields.seconds("connect_timeout", maximum: 3600) ?? target.connectTimeout
        return target
    }
}
