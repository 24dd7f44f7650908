import NIOCore

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
    public var maxHookTime: TimeAmount?
    public var dnsServers: [String]?
    public var cluster: ClusterSettings?
    public var dnsTimeout: TimeAmount?
    public var queue: QueueSchedule?
    public var listenTLS: [String]?
    public var tlsCertificate: String?
    public var tlsKey: String?
    public var tlsGroups: [String]?
    public var adminListen: String?
    public var adminToken: String?
    public var logFormat: LogFormat?
    public var strictHeaderSyntax: Bool?
    public var maxDataTime: TimeAmount?
    public var maxSessionTime: TimeAmount?

    public init() {}
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
        if let value = settings.luaInstructions { result.hookInstructionLimit = value }
        if let value = settings.luaMemory { result.policyMemoryLimit = value }
        if let value = settings.maxHookTime { result.maxHookTime = value }
        if let value = settings.dnsServers { result.dnsServers = value }
        if let value = settings.cluster { result.cluster = value }
        if let value = settings.dnsTimeout { result.dnsTimeout = value }
        if let value = settings.queue { result.queue = value }
        if let value = settings.listenTLS { result.listenTLS = value }
        if let value = settings.tlsCertificate { result.tlsCertificate = value }
        if let value = settings.tlsKey { result.tlsKey = value }
        if let value = settings.tlsGroups { result.tlsGroups = value }
        if let value = settings.adminListen { result.adminListen = value }
        if let value = settings.adminToken { result.adminToken = value }
        if let value = settings.logFormat { result.logFormat = value }
        if let value = settings.strictHeaderSyntax { result.strictHeaderSyntax = value }
        if let value = settings.maxDataTime { result.maxDataTime = value }
        if let value = settings.maxSessionTime { result.maxSessionTime = value }
        return result
    }
}
