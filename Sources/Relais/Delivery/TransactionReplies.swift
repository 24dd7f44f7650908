import SMTPCore

/// How Relais reads an upstream's replies in one mail transaction
/// (RFC 5321 3.3, 4.2.5). Pure, so every rule has a table test.
enum TransactionReplies {
    /// What to do once MAIL and the RCPTs are answered.
    enum AfterEnvelope: Equatable {
        /// 4xx at MAIL: the upstream cannot start; the next one of the route is tried.
        case failover(String)
        /// Nothing to send: every recipient has its outcome.
        case finished([String: RecipientOutcome])
        /// Send the content for `accepted`; `outcomes` holds the refused ones.
        case sendContent(accepted: [String], outcomes: [String: RecipientOutcome])
    }

    /// Reads the MAIL reply and one reply per recipient (fewer when the
    /// commands were not pipelined and MAIL was refused).
    static func afterEnvelope(recipients: [String], mail: SMTPReply, rcpt: [SMTPReply]) -> AfterEnvelope {
        if mail.isTransientFailure { return .failover("MAIL answered \(mail)") }
        if !mail.isPositive { return .finished(Dictionary(every: recipients, .failed("MAIL answered \(mail)"))) }
        var outcomes: [String: RecipientOutcome] = [:]
        var accepted: [String] = []
        for (index, recipient) in recipients.enumerated() {
            guard index < rcpt.count else {
                outcomes[recipient] = .deferred("RCPT got no reply")
                continue
            }
            let reply = rcpt[index]
            if reply.isPositive {
                accepted.append(recipient)
            } else {
                outcomes[recipient] = reply.isTransientFailure ? .deferred("RCPT answered \(reply)") : .failed("RCPT answered \(reply)")
            }
        }
        return accepted.isEmpty ? .finished(outcomes) : .sendContent(accepted: accepted, outcomes: outcomes)
    }

    /// Reads the reply to the end of the content (DATA's final dot or BDAT LAST).
    static func afterContent(_ reply: SMTPReply, accepted: [String], dsnPassedOn: Bool) -> [String: RecipientOutcome] {
        let outcome: RecipientOutcome
        if reply.isPositive {
            outcome = .delivered(reply.description, dsnPassedOn: dsnPassedOn)
        } else if reply.isTransientFailure {
            outcome = .deferred("end of data answered \(reply)")
        } else {
            outcome = .failed("end of data answered \(reply)")
        }
        return Dictionary(every: accepted, outcome)
    }
}
