import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import Relais
import ServiceLifecycle
import UnixSignals

/// `relais run [CONFIG]`: serve SMTP with a Lua policy (or the built-in
/// default), adjusted by flags, reloading the policy when it changes.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Serve SMTP with a Lua policy: accept, spool durably, route and deliver.",
        discussion: "Without CONFIG the built-in default policy is used. Flags override what the policy's relais.config sets. The policy reloads when its files change or on SIGHUP."
    )

    @Argument(help: "The policy (a Lua file).")
    var config: String?

    @Option(name: .customLong("listen"), help: "Address to listen on, HOST:PORT (repeatable; default 127.0.0.1:2525).")
    var listen: [String] = []

    @Option(help: "Host name used in the greeting and in Received headers.")
    var hostname: String?

    @Option(help: "Folder holding spool/ and mail/ (default ./relais-data).")
    var dataDir: String?

    @Option(help: "Largest message accepted, in bytes.")
    var maxMessageSize: Int?

    @Option(help: "Most recipients per message.")
    var maxRecipients: Int?

    @Option(name: .customLong("relay-network"), help: "CIDR whose clients may relay (repeatable; default loopback).")
    var relayNetworks: [String] = []

    @Option(help: "Seconds clients outside the relay networks wait for the greeting (early-talker check).")
    var greetingDelay: Double?

    @Option(help: "Seconds a client may stay silent between commands.")
    var commandTimeout: Double?

    @Option(help: "Seconds a client may stay silent while sending message text.")
    var dataTimeout: Double?

    @Option(help: "Most connections at once.")
    var maxConnections: Int?

    @Option(help: "Most connections at once from one IP outside the relay networks.")
    var maxConnectionsPerIp: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func run() async throws {
        let overrides = try makeOverrides()
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = RelaisLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "relais")
        let source = config.map(PolicySource.file) ?? .builtInDefault
        // Swift concurrency's jobs run on the event loops that carry the
        // connections: a delivery task and the I/O it awaits share a thread
        // instead of handing work across on every step.
        let sharedLoops = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let server: RelaisServer
        do {
            // Loading and binding block: not on an event loop, where tasks may now run.
            server = try await NIOThreadPool.singleton.runIfActive {
                let server = try RelaisServer(source: source, overrides: overrides, logger: logger,
                                              group: sharedLoops ? .singleton : nil)
                try server.start()
                return server
            }
        } catch {
            throw ValidationError("cannot start: \(error)")
        }
        var configuration = ServiceGroupConfiguration(
            services: server.services(watchingFiles: config != nil, hangups: hangups).map { .init(service: $0) },
            logger: logger)
        configuration.gracefulShutdownSignals = [.sigterm, .sigint]
        try await ServiceGroup(configuration: configuration).run()
        try await NIOThreadPool.singleton.runIfActive { server.shutdown() }
    }

    /// The flags given, as settings that override the policy's.
    private func makeOverrides() throws -> PolicySettings {
        var settings = PolicySettings()
        if !listen.isEmpty {
            for address in listen {
                do { _ = try ServerConfiguration.socketAddress(address) } catch { throw ValidationError("\(error)") }
            }
            settings.listen = listen
        }
        settings.hostname = hostname
        if let dataDir {
            settings.spool = dataDir + "/spool"
            settings.maildir = dataDir + "/mail"
        }
        if let maxMessageSize {
            guard maxMessageSize > 0 else { throw ValidationError("--max-message-size must be positive") }
            settings.maxMessageSize = maxMessageSize
        }
        if let maxRecipients {
            guard maxRecipients > 0 else { throw ValidationError("--max-recipients must be positive") }
            settings.maxRecipients = maxRecipients
        }
        if !relayNetworks.isEmpty {
            settings.relayNetworks = try relayNetworks.map { text in
                guard let network = IPNetwork(cidr: text) else { throw ValidationError("--relay-network \(text) is not a CIDR") }
                return network
            }
        }
        settings.greetingDelay = try greetingDelay.map { try seconds($0, "--greeting-delay") }
        settings.commandTimeout = try commandTimeout.map { try seconds($0, "--command-timeout") }
        settings.dataTimeout = try dataTimeout.map { try seconds($0, "--data-timeout") }
        settings.maxConnections = maxConnections
        settings.maxConnectionsPerIP = maxConnectionsPerIp
        return settings
    }

    private func seconds(_ value: Double, _ flag: String) throws -> TimeAmount {
        guard value >= 0, value < 86400 * 7 else { throw ValidationError("\(flag) must be between 0 and a week") }
        return .nanoseconds(Int64(value * 1e9))
    }
}
