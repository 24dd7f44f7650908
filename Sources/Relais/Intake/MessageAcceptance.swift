import NIOCore
import SMTPCore

/// The rules that decide, once the message text is in, what the client
/// hears: a mail loop, the data hook's verdict, the route decisions
/// (partial refusal, a deferred route), and the providers' size limits.
/// Pure, and the one place these rules live: the server and
/// `relais simulate` both ask it, so they cannot drift apart.
enum MessageAcceptance {
    enum Outcome: Equatable {
        /// Refuse the message with this reply.
        case refuse(SMTPReply)
        /// Send this reply, then close the connection.
        case disconnect(SMTPReply)
        /// Answer 250 and deliver to nobody.
        case discard(reason: String)
        /// Spool for the routed recipients; bounce the refused ones.
        case queue(routed: [RecipientRoute], refused: [RecipientRoute])
    }

    /// RFC 5321 6.3: too many `Received:` fields in the client's text is a
    /// loop. Checked before any hook runs.
    static func loopRefusal(receivedFields: Int, limits: SMTPLimits) -> SMTPReply? {
        receivedFields > limits.maxReceivedHeaders ? .mailLoop : nil
    }

    /// chasquid's rule, on by default (`header_syntax = "strict"`): a
    /// header-section line that is neither a field nor a continuation
    /// refuses the message, rather than passing on text whose headers
    /// another parser would read differently. Checked before any hook runs.
    static func headerRefusal(_ message: ByteBuffer, from offset: Int, strict: Bool) -> SMTPReply? {
        guard strict, let line = HeaderSection.firstMalformedLine(in: message, from: offset) else { return nil }
        return SMTPReply(550, EnhancedStatusCode(5, 6, 0), "Error: header line \(line) is neither a field nor a continuation")
    }

    /// What the policy's decision about a message of `size` octets comes to.
    static func outcome(of decision: MessageDecision, size: Int) -> Outcome {
        switch decision.verdict {
        case .reject(let reply), .tempfail(let reply): return .refuse(reply)
        case .disconnect(let reply): return .disconnect(reply)
        case .discard: return .discard(reason: "discarded by the data hook")
        case .accept, nil: break
        }
        if decision.routes.isEmpty { return .discard(reason: "the data hook removed every recipient") }
        let routed = decision.routes.filter { $0.refusal == nil }
        let refused = decision.routes.filter { $0.refusal != nil }
        // A recipient the route hook deferred (or a failed hook) defers the
        // whole message: it cannot be retried on its own after the 250.
        if let deferred = refused.first(where: { ($0.refusal?.code ?? 500) < 500 }) {
            return .refuse(deferred.refusal ?? PolicyVerdict.hookFailed)
        }
        guard !routed.isEmpty else { return .refuse(refused.first?.refusal ?? PolicyVerdict.hookFailed) }
        // A provider's size limit refuses the message now rather than bouncing it later.
        for route in routed {
            guard case .smarthost(let smarthost)? = route.targets.first, let limit = smarthost.maxMessageSize,
                  size > limit else { continue }
            return .refuse(SMTPReply(552, EnhancedStatusCode(5, 3, 4),
                                     "Error: message too big for \(smarthost.name) (\(limit) bytes at most)"))
        }
        return .queue(routed: routed, refused: refused)
    }
}
