@testable import Relais
import SMTPCore
import Testing

/// A policy without hooks, as a session sees it.
final class FixedPolicy: SessionPolicy {
    let hostname = "relay.test"
    var limits = SMTPLimits()
    var maxErrors = 20
    var relayAllowed = true
    var verdicts: [String: PolicyVerdict] = [:]
    var rewrite: String?
    var offersTLS = false
    var authConfigured = true
    var authPermitted = true
    var isAuthenticated = false

    func beginTransaction() {}

    /// What the hooks of this policy answer.
    func answer(_ question: PolicyQuestion) -> PolicyAnswer {
        switch question {
        case .helo: return PolicyAnswer(verdict: verdicts["helo"])
        case .mail: return PolicyAnswer(verdict: verdicts["mail"])
        case .rcpt(let recipient, _, _):
            return PolicyAnswer(verdict: verdicts["rcpt"],
                                recipient: rewrite.map { MailboxAddress(localPart: $0, domain: recipient.domain) })
        case .auth(_, _, let password):
            guard password == "right" else { return PolicyAnswer() }
            isAuthenticated = true
            return PolicyAnswer(verdict: .accept(text: nil))
        }
    }
}

extension SMTPServerSession {
    /// Handles `frame`, answering the session's questions as its
    /// `FixedPolicy` does, as the channel handler would.
    mutating func run(_ frame: CommandLineFramer.Frame) -> [Action] {
        settle(handle(frame))
    }

    private mutating func settle(_ actions: [Action]) -> [Action] {
        guard case .consult(let question)? = actions.first, let policy = policy as? FixedPolicy else { return actions }
        return settle(answer(question, policy.answer(question)))
    }
}

/// The dialogue rules, checked on the state machine alone, without sockets.
struct SMTPServerSessionTests {
    private func session(relayAllowed: Bool = true, maxRecipients: Int = 1000, maxErrors: Int = 20,
                         verdicts: [String: PolicyVerdict] = [:], rewrite: String? = nil) -> SMTPServerSession {
        let policy = FixedPolicy()
        policy.limits.maxRecipients = maxRecipients
        policy.relayAllowed = relayAllowed
        policy.maxErrors = maxErrors
        policy.verdicts = verdicts
        policy.rewrite = rewrite
        return SMTPServerSession(policy: policy)
    }

    @Test func transactionNeedsHeloMailAndRecipient() {
        var s = session()
        #expect(s.run(.line("MAIL FROM:<a@example.org>")) == [.reply(.needHelo)])
        #expect(s.run(.line("EHLO client")).count == 1)
        #expect(s.run(.line("DATA")) == [.reply(.needMail)])
        #expect(s.run(.line("MAIL FROM:<a@example.org>")) == [.reply(.senderOk)])
        #expect(s.run(.line("DATA")) == [.reply(.needRecipient)])
        #expect(s.run(.line("RCPT TO:<b@example.com>")) == [.reply(.recipientOk)])
        #expect(s.run(.line("DATA")) == [.receiveData(.startData)])
        #expect(s.transaction?.recipients.map(\.description) == ["b@example.com"])
    }

    @Test func relayIsDeniedUnlessAllowed() {
        var s = session(relayAllowed: false)
        _ = s.run(.line("EHLO client"))
        _ = s.run(.line("MAIL FROM:<a@example.org>"))
        #expect(s.run(.line("RCPT TO:<b@example.com>")) == [.reply(.relayDenied)])
        #expect(s.transaction?.recipients.isEmpty == true)
    }

    @Test func recipientLimit() {
        var s = session(maxRecipients: 1)
        _ = s.run(.line("EHLO client"))
        _ = s.run(.line("MAIL FROM:<a@example.org>"))
        #expect(s.run(.line("RCPT TO:<b@example.com>")) == [.reply(.recipientOk)])
        #expect(s.run(.line("RCPT TO:<c@example.com>")) == [.reply(.tooManyRecipients)])
    }

    @Test func esmtpParametersNeedEHLO() {
        var s = session()
        _ = s.run(.line("HELO client"))
        #expect(s.run(.line("MAIL FROM:<a@example.org> SIZE=10")) == [.reply(.unsupportedParameter("SIZE"))])
    }

    @Test func smtpUTF8IsRequiredForUTF8Addresses() {
        var s = session()
        _ = s.run(.line("EHLO client"))
        #expect(s.run(.line("MAIL FROM:<josé@example.org>")) == [.reply(.needSMTPUTF8)])
        #expect(s.run(.line("MAIL FROM:<a@example.org>")) == [.reply(.senderOk)])
        #expect(s.run(.line("RCPT TO:<用户@例子.广告>")) == [.reply(.needSMTPUTF8)])
        _ = s.run(.line("RSET"))
        #expect(s.run(.line("MAIL FROM:<josé@example.org> SMTPUTF8")) == [.reply(.senderOk)])
        #expect(s.run(.line("RCPT TO:<用户@例子.广告>")) == [.reply(.recipientOk)])
    }

    @Test func bdatWithoutTransactionIsConsumedThenRefused() {
        var s = session()
        _ = s.run(.line("EHLO client"))
        #expect(s.run(.line("BDAT 5")) == [.receiveChunk(size: 5, last: false, refusal: .needMail)])
        _ = s.run(.line("MAIL FROM:<a@example.org>"))
        _ = s.run(.line("RCPT TO:<b@example.com>"))
        #expect(s.run(.line("BDAT 5 LAST")) == [.receiveChunk(size: 5, last: true, refusal: nil)])
        #expect(s.run(.line("DATA")) == [.reply(.dataAfterBDAT)])
    }

    @Test func tooManyErrorsCloses() {
        var s = session(maxErrors: 3)
        #expect(s.run(.line("FROB")).count == 1)
        #expect(s.run(.invalid(.bareLineFeed)).count == 1)
        #expect(s.run(.line("FROB")) == [.reply(SMTPSyntaxError.unrecognizedCommand.reply), .close(.tooManyErrors)])
    }

    @Test func quitCloses() {
        var s = session()
        #expect(s.run(.line("QUIT")) == [.close(.bye)])
    }

    @Test func hookVerdictsDecide() {
        let refusal = SMTPReply(550, EnhancedStatusCode(5, 7, 1), "no")
        var s = session(relayAllowed: false, verdicts: ["rcpt": .accept(text: "welcome")])
        _ = s.run(.line("EHLO client"))
        _ = s.run(.line("MAIL FROM:<a@example.org>"))
        // An explicit accept overrides the relay default.
        #expect(s.run(.line("RCPT TO:<b@example.com>")) == [.reply(SMTPReply(250, EnhancedStatusCode(2, 1, 5), "welcome"))])
        var refusing = session(verdicts: ["mail": .reject(refusal)])
        _ = refusing.run(.line("EHLO client"))
        #expect(refusing.run(.line("MAIL FROM:<a@example.org>")) == [.reply(refusal)])
        #expect(refusing.transaction == nil)
        var closing = session(verdicts: ["helo": .disconnect(SMTPReply(421, EnhancedStatusCode(4, 7, 0), "bye"))])
        #expect(closing.run(.line("EHLO client")) == [.close(SMTPReply(421, EnhancedStatusCode(4, 7, 0), "bye"))])
        #expect(closing.helo == nil)
    }

    @Test func rcptRewriteIsKept() {
        var s = session(rewrite: "rewritten")
        _ = s.run(.line("EHLO client"))
        _ = s.run(.line("MAIL FROM:<a@example.org>"))
        _ = s.run(.line("RCPT TO:<b@example.com>"))
        #expect(s.transaction?.recipients.map(\.description) == ["rewritten@example.com"])
    }

    @Test func authNeedsTLSOffLoopback() {
        let policy = FixedPolicy()
        policy.authPermitted = false
        var s = SMTPServerSession(policy: policy)
        _ = s.run(.line("EHLO client"))
        #expect(s.run(.line("AUTH PLAIN AGEAcmlnaHQ=")) == [.reply(.authenticationNeedsTLS)])
    }

    @Test func authPlainAndLoginExchanges() {
        var s = session()
        _ = s.run(.line("EHLO client"))
        // PLAIN with a wrong password, then LOGIN step by step with the right one.
        #expect(s.run(.line("AUTH PLAIN AGEAd3Jvbmc=")) == [.reply(.authenticationFailed), .pause(seconds: 1)])
        #expect(s.run(.line("AUTH LOGIN")) == [.reply(SMTPReply(334, nil, "VXNlcm5hbWU6"))])
        #expect(s.run(.line("YQ==")) == [.reply(SMTPReply(334, nil, "UGFzc3dvcmQ6"))])
        #expect(s.run(.line("cmlnaHQ=")) == [.reply(.authenticationSucceeded)])
        #expect(s.run(.line("AUTH PLAIN AGEAcmlnaHQ=")) == [.reply(.alreadyAuthenticated)])
    }

    @Test func threeFailedAuthenticationsClose() {
        var s = session()
        _ = s.run(.line("EHLO client"))
        _ = s.run(.line("AUTH PLAIN AGEAd3Jvbmc="))
        _ = s.run(.line("AUTH PLAIN AGEAd3Jvbmc="))
        #expect(s.run(.line("AUTH PLAIN AGEAd3Jvbmc=")) == [.reply(.authenticationFailed), .close(.tooManyAuthenticationFailures)])
    }

    @Test func hooksAreQuestionsForTheHandler() {
        var s = session()
        #expect(s.handle(.line("EHLO client")) == [.consult(.helo(name: "client", extended: true))])
        #expect(s.helo == nil, "nothing is decided before the answer")
        guard case .reply(let greeting)? = s.answer(.helo(name: "client", extended: true), PolicyAnswer()).first else {
            Issue.record("no reply to EHLO")
            return
        }
        #expect(greeting.code == 250 && s.helo == "client")
        #expect(s.handle(.line("MAIL FROM:<a@example.org> SIZE=10"))
            == [.consult(.mail(.mailbox(MailboxAddress(localPart: "a", domain: "example.org")),
                               ESMTPParameters([.init(keyword: "SIZE", value: "10")]),
                               smtpUTF8: false, declaredSize: 10))])
    }

    @Test func authExchangeCanBeCancelled() {
        var s = session()
        _ = s.run(.line("EHLO client"))
        _ = s.run(.line("AUTH PLAIN"))
        #expect(s.run(.line("*")) == [.reply(.authenticationCancelled)])
        #expect(s.run(.line("NOOP")) == [.reply(.ok)])
    }
}
