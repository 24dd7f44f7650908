/// One recipient's result in one delivery attempt, as a courier gave it.
struct DeliveryAttempt: Equatable, Sendable {
    var index: Int
    var outcome: RecipientOutcome
    /// The courier that gave the outcome (or the last one tried).
    var target: String
    /// True for a local maildir: a success notice says `delivered`, not `relayed`.
    var local: Bool
}

/// What one attempt did to one recipient, for the log line.
struct AttemptRecord: Equatable, Sendable {
    enum Result: String, Sendable { case delivered, deferred, failed }

    var address: String
    var target: String
    var result: Result
    var reply: String
    var attempt: Int
}

extension MessageState {
    /// Applies the outcomes of one attempt made at `now`: delivered and
    /// failed recipients are final, deferred ones wait for the schedule's
    /// next delay, or fail once the message has waited `maxAge`. Pure: the
    /// caller saves the state and logs the records. `jitter` is drawn only
    /// for a deferred recipient (a random draw is a system call).
    mutating func record(_ attempts: [DeliveryAttempt], of envelope: Envelope, now: Double, schedule: QueueSchedule,
                         jitter: @autoclosure () -> Double = Double.random(in: 0.9...1.1)) -> [AttemptRecord] {
        attempts.map { attempt in
            var recipient = recipients[attempt.index]
            recipient.attempts += 1
            recipient.lastTarget = attempt.target
            let result: AttemptRecord.Result
            switch attempt.outcome {
            case .delivered(let reply, let passedOn):
                recipient.status = .delivered
                recipient.lastResult = reply
                if envelope.dsn(attempt.index).wantsSuccess && !passedOn {
                    recipient.successNotice = attempt.local ? "delivered" : "relayed"
                }
                result = .delivered
            case .failed(let reason):
                recipient.status = .failed
                recipient.lastResult = reason
                result = .failed
            case .deferred(let reason, _) where now - envelope.receivedAt >= schedule.maxAge:
                recipient.status = .failed
                recipient.lastResult = "gave up after \(Int(schedule.maxAge))s in the queue; last: \(reason)"
                result = .failed
            case .deferred(let reason, let retryAt):
                recipient.lastResult = reason
                // A known reopening (quota window, end of a down period) beats the backoff.
                recipient.nextAttempt = retryAt.map { max($0, now + 1) }
                    ?? now + schedule.delay(afterAttempt: recipient.attempts, jitter: jitter())
                result = .deferred
            }
            recipients[attempt.index] = recipient
            return AttemptRecord(address: recipient.address, target: attempt.target, result: result,
                                 reply: recipient.lastResult ?? "", attempt: recipient.attempts)
        }
    }

    /// Delay notices owed at `now`: recipients still pending after the
    /// schedule's `delayNotice` who asked for one, each at most once (marked
    /// here; the caller saves the state once the notice is queued).
    mutating func takeDelayNotices(of envelope: Envelope, now: Double, schedule: QueueSchedule) -> [RefusedRecipient] {
        guard now - envelope.receivedAt >= schedule.delayNotice else { return [] }
        var notices: [RefusedRecipient] = []
        for (index, recipient) in recipients.enumerated() where recipient.status == .pending && recipient.delayNoticed != true {
            let dsn = envelope.dsn(index)
            guard dsn.wantsDelay(forAll: schedule.delayNoticeForAll) else { continue }
            recipients[index].delayNoticed = true
            notices.append(RefusedRecipient(recipient: recipient.address, reply: recipient.lastResult ?? "not delivered yet",
                                            dsn: dsn, action: "delayed"))
        }
        return notices
    }

    /// True when some pending recipient will be owed a delay notice.
    func owesDelayNotices(of envelope: Envelope, schedule: QueueSchedule) -> Bool {
        recipients.indices.contains { index in
            recipients[index].status == .pending && recipients[index].delayNoticed != true
                && envelope.dsn(index).wantsDelay(forAll: schedule.delayNoticeForAll)
        }
    }

    /// The reports the sender is owed once every recipient is final: the
    /// failed ones that asked for failure notices, and success notices.
    func reports(for envelope: Envelope) -> [RefusedRecipient] {
        recipients.enumerated().compactMap { index, recipient in
            let dsn = envelope.dsn(index)
            if recipient.status == .failed && dsn.wantsFailure {
                return RefusedRecipient(recipient: recipient.address, reply: recipient.lastResult ?? "failed", dsn: dsn)
            }
            return recipient.successNotice.map {
                RefusedRecipient(recipient: recipient.address, reply: recipient.lastResult ?? "delivered", dsn: dsn, action: $0)
            }
        }
    }
}
