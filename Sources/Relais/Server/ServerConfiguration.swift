import NIOCore
import RelaisTLS
import SMTPCore
#if canImport(Glibc)
import Glibc
#endif

/// Everything the SMTP listener and the queue need to know, after the
/// policy's `relais.config` and the command line have been read. Defaults are the
/// embedded policy: loopback only, relaying for loopback clients.
public struct ServerConfiguration: Sendable {
    public var hostname: String = ServerConfiguration.systemHostname()
    public var listen: [String] = ["127.0.0.1:2525"]
    public var spoolDirectory: String = "relais-data/spool"
    public var maildirDirectory: String = "relais-data/mail"
    /// Where a recipient goes when no `route` hook decides; nil means the
    /// local maildir.
    public var defaultRoute: [RouteTarget]?
    /// The cluster this node shares limits with (`cluster`); nil alone.
    public var cluster: ClusterSettings?
    /// DNS servers for `relais.dns.lookup` (`dns.servers`); nil: /etc/resolv.conf.
    public var dnsServers: [String]?
    /// How long one DNS server has to answer (`dns.timeout`).
    public var dnsTimeout: TimeAmount = .seconds(2)
    /// Wall-clock time one hook call may take, waits included (`lua.max_hook_time`).
    public var maxHookTime: TimeAmount = .seconds(10)
    /// Lua instructions one hook call may run (`lua.max_instructions`).
    public var hookInstructionLimit: Int64 = 10_000_000
    /// Bytes one policy state may allocate (`lua.max_memory`).
    public var policyMemoryLimit: Int = 64 * 1024 * 1024
    public var queue = QueueSchedule()
    /// Implicit-TLS listeners (port 465 style).
    public var listenTLS: [String] = []
    /// PEM certificate chain and key; with them, STARTTLS is offered.
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// Key-exchange groups offered to clients (OpenSSL names).
    public var tlsGroups = TLSContext.defaultGroups
    public var limits = SMTPLimits()
    public var relayNetworks: [IPNetwork] = IPNetwork.loopback
    /// Clients outside `relayNetworks` wait this long for the greeting; any
    /// byte they send before it marks them as an early talker (spamware).
    public var greetingDelay: TimeAmount = .seconds(1)
    /// RFC 5321 4.5.3.2.7: the server waits at least 5 minutes for a command.
    public var commandTimeout: TimeAmount = .minutes(5)
    /// RFC 5321 4.5.3.2.6 allows 10 minutes between blocks of message text.
    public var dataTimeout: TimeAmount = .minutes(10)
    /// A whole DATA or BDAT transfer must end within this, plus one second
    /// per `ConnectionTimer.minimumDataRate` octets received: a trickling
    /// client cannot hold a connection with a byte now and then.
    public var maxDataTime: TimeAmount = .minutes(10)
    /// A whole session ends after this, whatever it is doing.
    public var maxSessionTime: TimeAmount = .hours(1)
    /// Refuse messages whose header section has lines that are neither
    /// fields nor continuations (`header_syntax = "strict"`, the default);
    /// `"accept"` passes them on.
    public var strictHeaderSyntax = true
    /// Error replies one connection may earn before it is disconnected.
    public var maxErrors: Int = 20
    public var maxConnections: Int = 10_000
    /// Per client IP; clients in `relayNetworks` are exempt, like Postfix's
    /// `smtpd_client_event_limit_exceptions = $mynetworks`.
    public var maxConnectionsPerIP: Int = 50
    /// The admin HTTP endpoint (metrics, health, queue API), when set.
    public var adminListen: String?
    /// Required as `Authorization: Bearer` when set; never logged.
    public var adminToken: String?
    public var logFormat = LogFormat.text
    /// How long a graceful stop waits for transactions in flight.
    public var shutdownGracePeriod: TimeAmount = .seconds(30)

    public init() {}

    /// The route of a recipient no hook routed.
    public var effectiveDefaultRoute: [RouteTarget] {
        defaultRoute ?? [.maildir(path: FilePaths.absolute(maildirDirectory))]
    }

    /// The machine's host name, as `gethostname(2)` gives it.
    public static func systemHostname() -> String {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count - 1) == 0 else { return "localhost" }
        let text = String(decoding: name.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.isEmpty ? "localhost" : text
    }

    /// Parses `HOST:PORT` or `[IPv6]:PORT`.
    public static func socketAddress(_ text: String) throws -> SocketAddress {
        let host: String
        let portText: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            portText = text[text.index(after: close)...].dropFirst()
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
        } else {
            throw ConfigurationError("listen address \(text.debugDescription) is not HOST:PORT")
        }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw ConfigurationError("listen address \(text.debugDescription) has no valid port")
        }
        do {
            return try SocketAddress(ipAddress: host, port: port)
        } catch {
            throw ConfigurationError("listen address \(text.debugDescription): \(host) is not an IP address")
        }
    }
}

/// A configuration mistake, with the message an operator needs to fix it.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
