import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RelaisDNS
import RelaisTLS

/// What hooks reach beyond the relay, shared by every policy generation of
/// one server (or one `simulate` run): the DNS cache, which a reload keeps,
/// and the TLS client contexts for HTTPS by CA file.
public final class HookServices: Sendable {
    public let dnsCache = DNSCache()
    let tlsContexts = TLSClientContexts()
    /// Where each call is counted (`relais_hook_io_calls_total`), when the server has metrics.
    let metrics: RelayMetrics?

    public init(metrics: RelayMetrics? = nil) {
        self.metrics = metrics
    }

    /// The resolver a generation's hooks use: the configured servers, or
    /// those of /etc/resolv.conf. Blocking (reads the file): call off the loops.
    func resolver(servers: [String]?, timeout: TimeAmount) throws -> DNSResolver {
        let names = servers ?? ResolvConf.servers(in: (try? String(contentsOfFile: ResolvConf.path, encoding: .utf8)) ?? "")
        return DNSResolver(servers: try names.map(DNSResolver.serverAddress), timeout: timeout, cache: dnsCache)
    }
}

/// Verifying TLS client contexts by CA file (nil: the system store), made
/// once each: loading a CA store costs milliseconds, and a client (a hook's
/// HTTPS request, an MTA-STS policy fetch) should not pay it per request.
/// Blocking the first time for a file: use off the event loops.
final class TLSClientContexts: Sendable {
    private let contexts = NIOLockedValueBox([String: TLSContext]())

    func context(caFile: String?) throws -> TLSContext {
        let key = caFile ?? ""
        if let context = contexts.withLockedValue({ $0[key] }) { return context }
        let context = try TLSContext.client(verify: true, caFile: caFile)
        contexts.withLockedValue { $0[key] = context }
        return context
    }
}

/// A short text for a failed network call, as Lua's `nil, err` shows it:
/// `connection refused`, `timeout`, or the error's own description.
enum NetworkFailure {
    static func describe(_ error: any Error) -> String {
        if let error = error as? IOError {
            switch error.errnoCode {
            case ECONNREFUSED: return "connection refused"
            case ETIMEDOUT: return "timeout"
            case ENETUNREACH, EHOSTUNREACH: return "unreachable"
            default: return error.description
            }
        }
        if let error = error as? NIOConnectionError {
            return error.connectionErrors.first.map { describe($0.error) }
                ?? (error.dnsAError ?? error.dnsAAAAError).map { "cannot resolve \(error.host): \($0)" }
                ?? "cannot connect to \(error.host)"
        }
        if let error = error as? ChannelError, case .connectTimeout = error { return "timeout" }
        return "\(error)"
    }
}
