import Foundation
import SMTPCore

/// How a failure to get a transaction going counts for an upstream's health.
enum UpstreamFailure: Equatable {
    /// No usable connection: refused, timed out, no greeting, TLS failed.
    /// Counts towards marking the upstream down.
    case connectivity(String)
    /// The upstream asked Relais to slow down: pause it, do not count it as down.
    case throttle(String)
    /// Anything else (credentials refused, a 4xx at MAIL): neither.
    case other(String)

    /// The rule, documented in README: a 421 at any stage, or a 4xx whose
    /// enhanced code is 4.7.x or whose text speaks of a rate or of too many
    /// connections or messages, is a throttling reply.
    static func isThrottle(_ reply: SMTPReply) -> Bool {
        guard reply.isTransientFailure else { return false }
        if reply.code == 421 || reply.enhanced?.subject == 7 { return true }
        let text = reply.text.lowercased()
        return text.contains("rate") || text.contains("too many") || text.range(of: #"\b4\.7\.\d"#, options: .regularExpression) != nil
    }

    /// Classifies an error from opening a connection (greeting, EHLO,
    /// STARTTLS, AUTH).
    static func classify(_ error: any Error) -> UpstreamFailure {
        guard let error = error as? SMTPClientError else { return .connectivity("\(error)") }
        switch error {
        case .unexpected(let reply, _) where isThrottle(reply):
            return .throttle("\(error)")
        case .unexpected(_, let stage) where stage.hasPrefix("AUTH"):
            return .other("\(error)")
        case .refused:
            return .other("\(error)")
        case .connect, .timeout, .closed, .unexpected, .malformed, .tls:
            return .connectivity("\(error)")
        }
    }
}
