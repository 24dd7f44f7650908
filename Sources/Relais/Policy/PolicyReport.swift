/// What `relais check` prints about a loaded policy: listeners, limits,
/// hooks per stage with `file:line`, and where mail can go.
public struct PolicyReport {
    public let generation: PolicyGeneration

    public init(_ generation: PolicyGeneration) { self.generation = generation }

    public var text: String {
        let configuration = generation.configuration
        var lines = ["policy \(generation.source.displayName): loaded"]
        lines.append("hostname       \(configuration.hostname)")
        lines.append("listen         \(configuration.listen.joined(separator: ", "))")
        if !configuration.listenTLS.isEmpty {
            lines.append("listen_tls     \(configuration.listenTLS.joined(separator: ", "))")
        }
        if let certificate = generation.tlsContext?.certificate {
            lines.append("tls            \(certificate.subject), expires \(certificate.expires); "
                + "groups \(configuration.tlsGroups.joined(separator: ", "))")
        }
        lines.append("relay networks \(configuration.relayNetworks.map(\.description).joined(separator: ", "))")
        lines.append("spool          \(configuration.spoolDirectory)")
        lines.append("limits         max_message_size=\(configuration.limits.maxMessageSize) "
            + "max_recipients=\(configuration.limits.maxRecipients) max_connections=\(configuration.maxConnections) "
            + "max_connections_per_ip=\(configuration.maxConnectionsPerIP)")
        lines.append("lua            max_instructions=\(configuration.hookInstructionLimit) "
            + "max_memory=\(configuration.policyMemoryLimit) max_hook_time=\(configuration.maxHookTime.nanoseconds / 1_000_000)ms")
        if let cluster = configuration.cluster {
            lines.append("cluster        node \(cluster.node), redis \(cluster.redis.addressText), lease \(cluster.leaseSeconds)s")
        }
        lines.append("hooks")
        for stage in HookStage.allCases {
            let places = generation.hookLocations[stage] ?? []
            let text = places.isEmpty ? "(none: \(Self.defaultBehaviour(stage)))" : places.joined(separator: ", ")
            lines.append("  \(stage.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(text)")
        }
        lines.append("upstreams")
        lines.append("  default route  \(configuration.effectiveDefaultRoute.map(\.description).joined(separator: " -> "))")
        for target in generation.declaredTargets where !configuration.effectiveDefaultRoute.contains(target) {
            lines.append("  declared       \(target)")
        }
        for case .smarthost(let smarthost) in generation.declaredTargets {
            let health = smarthost.healthSettings
            var limits = "connect_timeout=\(Int(smarthost.connectionTimeout)) timeout=\(Int(smarthost.timeout)) "
                + "health=\(health.failures)/\(Int(health.downMin))s-\(Int(health.downMax))s"
            for window in smarthost.quota?.windows ?? [] { limits += " quota \(window.name)=\(window.limit)" }
            if smarthost.isShared {
                limits += configuration.cluster == nil ? " shared (no cluster configured: local limits)" : " shared across the cluster"
            }
            let label = smarthost.name.count < 14 ? smarthost.name.padding(toLength: 14, withPad: " ", startingAt: 0) : smarthost.name
            lines.append("  \(label) \(limits)")
        }
        for signer in generation.signers.values.sorted(by: { $0.label < $1.label }) {
            lines.append("dkim           \(signer.label)")
        }
        if generation.watchedFiles.count > 1 {
            lines.append("files          \(generation.watchedFiles.joined(separator: ", "))")
        }
        return lines.joined(separator: "\n")
    }

    private static func defaultBehaviour(_ stage: HookStage) -> String {
        switch stage {
        case .connect, .helo, .mail, .data: return "accept"
        case .auth: return "AUTH not offered"
        case .rcpt: return "accept for relay_networks, else 554 5.7.1 Relay access denied"
        case .route: return "default route"
        }
    }
}
