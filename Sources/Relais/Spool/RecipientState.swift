import Foundation

/// Where each recipient of a queued message stands, appended durably to its
/// spool file after every attempt (`StateRecord`), so a restart resumes the
/// schedule and never delivers a finished recipient again.
struct MessageState: Codable, Sendable, Equatable {
    struct Recipient: Codable, Sendable, Equatable {
        enum Status: String, Codable, Sendable { case pending, delivered, failed }

        var address: String
        var status: Status = .pending
        var attempts = 0
        /// The last attempt's result: the upstream's reply or the reason.
        var lastResult: String?
        /// Upstream (or maildir) of the last attempt.
        var lastTarget: String?
        /// Seconds since 1970 of the next attempt.
        var nextAttempt: Double = 0
        /// `delivered` or `relayed` when the sender asked for a success
        /// notification (NOTIFY=SUCCESS) that Relais must send.
        var successNotice: String?
        /// True once the sender was told this recipient is delayed.
        var delayNoticed: Bool?
    }

    var recipients: [Recipient]
    /// True once the bounce for failed recipients is queued.
    var bounced = false

    init(envelope: Envelope) {
        recipients = envelope.recipients.map { Recipient(address: $0) }
    }

    var isFinished: Bool { recipients.allSatisfy { $0.status != .pending } }

    var nextAttempt: Double? {
        recipients.filter { $0.status == .pending }.map(\.nextAttempt).min()
    }
}
