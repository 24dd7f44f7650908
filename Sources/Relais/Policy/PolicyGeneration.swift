import Logging
import NIOConcurrencyHelpers
import NIOCore
import RelaisDNS
import RelaisLua
import RelaisTLS

/// One loaded version of the policy: the configuration it produced and one
/// Lua state per event loop (Lua states are not thread-safe; a connection's
/// hooks all run on its own loop). Immutable once built; a reload builds a
/// new generation and the old one lives on while transactions use it.
public final class PolicyGeneration: Sendable {
    public let number: Int
    public let source: PolicySource
    public let configuration: ServerConfiguration
    /// The config file and every file it required or read.
    public let watchedFiles: [String]
    /// `file:line` of each handler, per stage.
    public let hookLocations: [HookStage: [String]]
    /// Route targets the policy declared while loading.
    public let declaredTargets: [RouteTarget]
    /// The server TLS context when `tls` is configured (STARTTLS, `listen_tls`).
    public let tlsContext: TLSContext?
    /// The DKIM signers the policy's smarthosts name, by label.
    let signers: [String: DKIMSigner]
    /// The resolver of this generation's `dns` settings (hooks, `simulate`).
    let resolver: DNSResolver
    private let runtimes: [ObjectIdentifier: NIOLoopBoundBox<PolicyRuntime?>]

    /// Loads the policy once to learn its configuration, then once per event
    /// loop with the configured Lua limits. Throws with `file:line`.
    /// Blocking (reads files): call off the event loops.
    public static func load(_ source: PolicySource, overrides: PolicySettings, base: ServerConfiguration,
                            loops: [any EventLoop], number: Int, services: HookServices,
                            logger: Logger) throws -> PolicyGeneration {
        let probe = try PolicyRuntime(source: source, limits: base.luaLimits, logger: logger)
        var configuration = (probe.settings + [overrides]).reduce(base) { $0.applying($1) }
        configuration.defaultRoute = configuration.effectiveDefaultRoute
        if configuration.cluster?.node.isEmpty == true { configuration.cluster?.node = configuration.hostname }
        var watchedFiles = probe.watchedFiles
        var tlsContext: TLSContext?
        if let certificate = configuration.tlsCertificate, let key = configuration.tlsKey {
            let resolve = { (path: String) in path.hasPrefix("/") ? path : FilePaths.normalized(source.directory + "/" + path) }
            configuration.tlsCertificate = resolve(certificate)
            configuration.tlsKey = resolve(key)
            do {
                tlsContext = try TLSContext.server(certificateChain: resolve(certificate), privateKey: resolve(key),
                                                   groups: configuration.tlsGroups)
            } catch {
                throw ConfigurationError("relais.config: tls: \(error)")
            }
            watchedFiles += [resolve(certificate), resolve(key)]
        } else if !configuration.listenTLS.isEmpty {
            throw ConfigurationError("relais.config: listen_tls needs tls = { cert = ..., key = ... }")
        }
        let resolver: DNSResolver
        do {
            resolver = try services.resolver(servers: configuration.dnsServers, timeout: configuration.dnsTimeout)
        } catch {
            throw ConfigurationError("relais.config: dns.servers: \(error)")
        }
        var runtimes: [ObjectIdentifier: NIOLoopBoundBox<PolicyRuntime?>] = [:]
        for loop in loops {
            let runtime = try PolicyRuntime(source: source, limits: configuration.luaLimits, logger: logger,
                                            quietWhileLoading: true,
                                            io: HookIO(loop: loop, resolver: resolver, services: services))
            runtimes[ObjectIdentifier(loop)] = NIOLoopBoundBox.makeBoxSendingValue(runtime, eventLoop: loop)
        }
        return PolicyGeneration(number: number, source: source, configuration: configuration,
                                watchedFiles: watchedFiles, hookLocations: probe.hookLocations,
                                declaredTargets: probe.declaredTargets, tlsContext: tlsContext, signers: probe.signers,
                                resolver: resolver, runtimes: runtimes)
    }

    private init(number: Int, source: PolicySource, configuration: ServerConfiguration, watchedFiles: [String],
                 hookLocations: [HookStage: [String]], declaredTargets: [RouteTarget], tlsContext: TLSContext?,
                 signers: [String: DKIMSigner], resolver: DNSResolver,
                 runtimes: [ObjectIdentifier: NIOLoopBoundBox<PolicyRuntime?>]) {
        self.signers = signers
        self.resolver = resolver
        self.number = number
        self.source = source
        self.configuration = configuration
        self.watchedFiles = watchedFiles
        self.hookLocations = hookLocations
        self.declaredTargets = declaredTargets
        self.tlsContext = tlsContext
        self.runtimes = runtimes
    }

    /// The state for `loop`; call on that loop.
    func runtime(on loop: any EventLoop) -> PolicyRuntime? {
        runtimes[ObjectIdentifier(loop)]?.value
    }

    public func hasHooks(_ stage: HookStage) -> Bool { !(hookLocations[stage] ?? []).isEmpty }

    /// The credential for `smarthost`, from the state of one of the loops
    /// (a token function runs there, with the hook budget).
    func credential(for smarthost: String, on loop: any EventLoop) async throws -> String {
        let box = runtimes[ObjectIdentifier(loop)]
        let credential = try await loop.submit {
            guard let runtime = box?.value else { throw LuaError("no policy state on this event loop") }
            return try runtime.credential(for: smarthost)
        }.get()
        switch credential {
        case .ready(let secret): return secret
        case .oauth2(let source): return try await source.token()
        }
    }
}

/// The generation new transactions use; replaced by a successful reload.
public final class PolicyStore: Sendable {
    private let current: NIOLockedValueBox<PolicyGeneration>

    public init(_ generation: PolicyGeneration) {
        current = NIOLockedValueBox(generation)
    }

    public var generation: PolicyGeneration { current.withLockedValue { $0 } }

    func replace(with generation: PolicyGeneration) {
        current.withLockedValue { $0 = generation }
    }
}

extension ServerConfiguration {
    /// The budgets each policy state runs with.
    var luaLimits: LuaLimits {
        var limits = LuaLimits()
        limits.instructionsPerCall = hookInstructionLimit
        limits.memoryBytes = policyMemoryLimit
        return limits
    }
}
