@testable import Relais
import Testing

/// Recipient state after an attempt, as a pure function of the outcomes.
struct DeliveryAttemptTests {
    private var envelope: Envelope {
        var envelope = Envelope(id: "Q1", sender: "s@example.org", recipients: ["a@x.example", "b@x.example", "c@x.example"],
                                smtpUTF8: false, body: nil, receivedAt: 1000, clientIP: "127.0.0.1", helo: "h")
        envelope.recipientDSN = [RecipientDSN(notify: ["SUCCESS"]), RecipientDSN(), RecipientDSN(notify: ["NEVER"])]
        return envelope
    }

    private var schedule: QueueSchedule {
        var schedule = QueueSchedule()
        schedule.retryMin = 60
        schedule.retryMax = 300
        schedule.maxAge = 3600
        return schedule
    }

    @Test func outcomesBecomeStatesAndRecords() {
        var state = MessageState(envelope: envelope)
        let records = state.record([
            DeliveryAttempt(index: 0, outcome: .delivered("250 ok", dsnPassedOn: false), target: "up", local: false),
            DeliveryAttempt(index: 1, outcome: .deferred("451 later"), target: "up", local: false),
            DeliveryAttempt(index: 2, outcome: .failed("550 no"), target: "up", local: false),
        ], of: envelope, now: 1100, schedule: schedule, jitter: 1)
        #expect(records.map(\.result) == [.delivered, .deferred, .failed])
        #expect(state.recipients.map(\.status) == [.delivered, .pending, .failed])
        #expect(state.recipients[0].successNotice == "relayed")
        #expect(state.recipients[1].nextAttempt == 1160)
        #expect(state.recipients.map(\.attempts) == [1, 1, 1])
        #expect(!state.isFinished)
    }

    @Test func backoffDoublesUpToRetryMax() {
        var state = MessageState(envelope: envelope)
        var delays: [Double] = []
        for attempt in 0..<5 {
            let now = 1000 + Double(attempt)
            _ = state.record([DeliveryAttempt(index: 1, outcome: .deferred("451"), target: "up", local: false)],
                             of: envelope, now: now, schedule: schedule, jitter: 1)
            delays.append(state.recipients[1].nextAttempt - now)
        }
        #expect(delays == [60, 120, 240, 300, 300])
    }

    @Test func deferredPastMaxAgeFails() {
        var state = MessageState(envelope: envelope)
        _ = state.record([DeliveryAttempt(index: 1, outcome: .deferred("451 later"), target: "up", local: false)],
                         of: envelope, now: 1000 + 3600, schedule: schedule)
        #expect(state.recipients[1].status == .failed)
        #expect(state.recipients[1].lastResult == "gave up after 3600s in the queue; last: 451 later")
    }

    @Test func localDeliveryIsReportedAsDelivered() {
        var state = MessageState(envelope: envelope)
        _ = state.record([DeliveryAttempt(index: 0, outcome: .delivered("250", dsnPassedOn: false), target: "m", local: true)],
                         of: envelope, now: 1000, schedule: schedule)
        #expect(state.recipients[0].successNotice == "delivered")
    }

    @Test func reportsHonourNotify() {
        var state = MessageState(envelope: envelope)
        _ = state.record([
            DeliveryAttempt(index: 0, outcome: .delivered("250 ok", dsnPassedOn: true), target: "up", local: false),
            DeliveryAttempt(index: 1, outcome: .failed("550 no"), target: "up", local: false),
            DeliveryAttempt(index: 2, outcome: .failed("550 no"), target: "up", local: false),
        ], of: envelope, now: 1000, schedule: schedule)
        // The upstream took the success notice over; NOTIFY=NEVER gets no bounce.
        #expect(state.reports(for: envelope).map(\.recipient) == ["b@x.example"])
        #expect(state.isFinished)
    }
}
