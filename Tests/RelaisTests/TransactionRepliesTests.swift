@testable import Relais
import SMTPCore
import Testing

/// How an upstream's replies become recipient outcomes, without a socket.
struct TransactionRepliesTests {
    private static func reply(_ code: Int) -> SMTPReply { SMTPReply(code, nil, "text") }
    private let recipients = ["a@x.example", "b@x.example"]

    @Test func transientMailFailsOver() {
        #expect(TransactionReplies.afterEnvelope(recipients: recipients, mail: Self.reply(421), rcpt: [])
                == .failover("MAIL answered 421 text"))
        #expect(TransactionReplies.afterEnvelope(recipients: recipients, mail: Self.reply(451), rcpt: [Self.reply(250)])
                == .failover("MAIL answered 451 text"))
    }

    @Test func permanentMailFailsEveryone() {
        #expect(TransactionReplies.afterEnvelope(recipients: recipients, mail: Self.reply(550), rcpt: [])
                == .finished(["a@x.example": .failed("MAIL answered 550 text"), "b@x.example": .failed("MAIL answered 550 text")]))
    }

    @Test(arguments: [
        (250, 250, ["a@x.example", "b@x.example"], [String: RecipientOutcome]()),
        (250, 450, ["a@x.example"], ["b@x.example": .deferred("RCPT answered 450 text")]),
        (550, 251, ["b@x.example"], ["a@x.example": .failed("RCPT answered 550 text")]),
    ] as [(Int, Int, [String], [String: RecipientOutcome])])
    func someRecipientsAccepted(_ first: Int, _ second: Int, _ accepted: [String], _ refused: [String: RecipientOutcome]) {
        #expect(TransactionReplies.afterEnvelope(recipients: recipients, mail: Self.reply(250),
                                                 rcpt: [Self.reply(first), Self.reply(second)])
                == .sendContent(accepted: accepted, outcomes: refused))
    }

    @Test func noRecipientAcceptedSendsNothing() {
        #expect(TransactionReplies.afterEnvelope(recipients: recipients, mail: Self.reply(250),
                                                 rcpt: [Self.reply(550), Self.reply(452)])
                == .finished(["a@x.example": .failed("RCPT answered 550 text"), "b@x.example": .deferred("RCPT answered 452 text")]))
    }

    @Test func missingRcptRepliesDefer() {
        #expect(TransactionReplies.afterEnvelope(recipients: recipients, mail: Self.reply(250), rcpt: [Self.reply(250)])
                == .sendContent(accepted: ["a@x.example"], outcomes: ["b@x.example": .deferred("RCPT got no reply")]))
    }

    @Test(arguments: [
        (250, RecipientOutcome.delivered("250 text", dsnPassedOn: true)),
        (452, .deferred("end of data answered 452 text")),
        (554, .failed("end of data answered 554 text")),
    ])
    func endOfData(_ code: Int, _ expected: RecipientOutcome) {
        #expect(TransactionReplies.afterContent(Self.reply(code), accepted: recipients, dsnPassedOn: true)
                == Dictionary(every: recipients, expected))
    }
}
