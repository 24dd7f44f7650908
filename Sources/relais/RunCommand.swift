import ArgumentParser
import Dispatch
import Foundation
import Logging
import NIOCore
import Relais

/// `relais run`: serve SMTP with the embedded default policy, adjusted by flags.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Serve SMTP: accept, spool durably and deliver to the local maildir."
    )

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

    func run() throws {
        let configuration = try makeConfiguration()
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "relais")
        let server = RelaisServer(configuration: configuration, logger: logger)
        do {
            _ = try server.start()
        } catch {
            throw ValidationError("cannot start: \(error)")
        }
        let stopped = DispatchSemaphore(value: 0)
        let signalQueue = DispatchQueue(label: "relais.signals")
        var sources: [any DispatchSourceSignal] = []
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: signalQueue)
            source.setEventHandler {
                server.stop()
                stopped.signal()
            }
            source.resume()
            sources.append(source)
        }
        stopped.wait()
        sources.forEach { $0.cancel() }
    }

    private func makeConfiguration() throws -> ServerConfiguration {
        var configuration = ServerConfiguration()
        if !listen.isEmpty { configuration.listen = listen }
        for address in configuration.listen {
            do { _ = try ServerConfiguration.socketAddress(address) } catch { throw ValidationError("\(error)") }
        }
        if let hostname { configuration.hostname = hostname }
        if let dataDir { configuration.dataDirectory = dataDir }
        if let maxMessageSize {
            guard maxMessageSize > 0 else { throw ValidationError("--max-message-size must be positive") }
            configuration.limits.maxMessageSize = maxMessageSize
        }
        if let maxRecipients {
            guard maxRecipients > 0 else { throw ValidationError("--max-recipients must be positive") }
            configuration.limits.maxRecipients = maxRecipients
        }
        if !relayNetworks.isEmpty {
            configuration.relayNetworks = try relayNetworks.map { text in
                guard let network = IPNetwork(cidr: text) else { throw ValidationError("--relay-network \(text) is not a CIDR") }
                return network
            }
        }
        if let greetingDelay { configuration.greetingDelay = try seconds(greetingDelay, "--greeting-delay") }
        if let commandTimeout { configuration.commandTimeout = try seconds(commandTimeout, "--command-timeout") }
        if let dataTimeout { configuration.dataTimeout = try seconds(dataTimeout, "--data-timeout") }
        if let maxConnections { configuration.maxConnections = maxConnections }
        if let maxConnectionsPerIp { configuration.maxConnectionsPerIP = maxConnectionsPerIp }
        return configuration
    }

    private func seconds(_ value: Double, _ flag: String) throws -> TimeAmount {
        guard value >= 0, value < 86400 * 7 else { throw ValidationError("\(flag) must be between 0 and a week") }
        return .nanoseconds(Int64(value * 1e9))
    }
}
