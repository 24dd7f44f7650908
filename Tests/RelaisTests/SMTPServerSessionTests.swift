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
    func authenticate(mechanism: String, username: String, password: String) -> PolicyVerdict? {
        guard password == "right" else { return nil }
        isAuthenticated = true
        return .accept(text: nil)
    }
    func helo(_ name: String) -> PolicyVerdict? { verdicts["helo"] }
    func mail(_ sender: inout ReversePath, _ parameters: ESMTPParameters) -> PolicyVerdict? { verdicts["mail"] }
    func rcpt(_ recipient: inout MailboxAddress, _ parameters: ESMTPParameters) -> PolicyVerdict? {
        if let rewrite { recipient = MailboxAddress(localPart: rewrite, domain: recipient.domain) }
        return verdicts["rcpt"]
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
        #expect(s.handle(.line("MAIL FROM:<a@example.org>")) == [.reply(.needHelo)])
        #expect(s.handle(.line("EHLO client")).count == 1)
        #expect(s.handle(.line("DATA")) == [.reply(.needMail)])
        #expect(s.handle(.line("MAIL FROM:<a@example.org>")) == [.reply(.senderOk)])
        #expect(s.handle(.line("DATA")) == [.reply(.needRecipient)])
        #expect(s.handle(.line("RCPT TO:<b@example.com>")) == [.reply(.recipientOk)])
        #expect(s.handle(.line("DATA")) == [.receiveData(.startData)])
        #expect(s.transaction?.recipients.map(\.description) == ["b@example.com"])
    }

    @Test func relayIsDeniedUnlessAllowed() {
        var s = session(relayAllowed: false)
        _ = s.handle(.line("EHLO client"))
        _ = s.handle(.line("MAIL FROM:<a@example.org>"))
        #expect(s.handle(.line("RCPT TO:<b@example.com>")) == [.reply(.relayDenied)])
        #expect(s.transaction?.recipients.isEmpty == true)
    }

    @Test func recipientLimit() {
        var s = session(maxRecipients: 1)
        _ = s.handle(.line("EHLO client"))
        _ = s.handle(.line("MAIL FROM:<a@example.org>"))
        #expect(s.handle(.line("RCPT TO:<b@example.com>")) == [.reply(.recipientOk)])
        #expect(s.handle(.line("RCPT TO:<c@example.com>")) == [.reply(.tooManyRecipients)])
    }

    @Test func esmtpParametersNeedEHLO() {
        var s = session()
        _ = s.handle(.line("HELO client"))
        #expect(s.handle(.line("MAIL FROM:<a@example.org> SIZE=10")) == [.reply(.unsupportedParameter("SIZE"))])
    }

    @Test func smtpUTF8IsRequiredForUTF8Addresses() {
        var s = session()
        _ = s.handle(.line("EHLO client"))
        #expect(s.handle(.line("MAIL FROM:<josé@example.org>")) == [.reply(.needSMTPUTF8)])
        #expect(s.handle(.line("MAIL FROM:<a@example.org>")) == [.reply(.senderOk)])
        #expect(s.handle(.line("RCPT TO:<用户@例子.广告>")) == [.reply(.needSMTPUTF8)])
        _ = s.handle(.line("RSET"))
        #expect(s.handle(.line("MAIL FROM:<josé@example.org> SMTPUTF8")) == [.reply(.senderOk)])
        #expect(s.handle(.line("RCPT TO:<用户@例子.广告>")) == [.reply(.recipientOk)])
    }

    @Test func bdatWithoutTransactionIsConsumedThenRefused() {
        var s = session()
        _ = s.handle(.line("EHLO client"))
        #expect(s.handle(.line("BDAT 5")) == [.receiveChunk(size: 5, last: false, refusal: .needMail)])
        _ = s.handle(.line("MAIL FROM:<a@example.org>"))
        _ = s.handle(.line("RCPT TO:<b@example.com>"))
        #expect(s.handle(.line("BDAT 5 LAST")) == [.receiveChunk(size: 5, last: true, refusal: nil)])
        #expect(s.handle(.line("DATA")) == [.reply(.dataAfterBDAT)])
    }

    @Test func tooManyErrorsCloses() {
        var s = session(maxErrors: 3)
        #expect(s.handle(.line("FROB")).count == 1)
        #expect(s.handle(.invalid(.bareLineFeed)).count == 1)
        #expect(s.handle(.line("FROB")) == [.reply(SMTPSyntaxError.unrecognizedCommand.reply), .close(.tooManyErrors)])
    }

    @Test func quitCloses() {
        var s = session()
        #expect(s.handle(.line("QUIT")) == [.close(.bye)])
    }

    @Test func hookVerdictsDecide() {
        let refusal = SMTPReply(550, EnhancedStatusCode(5, 7, 1), "no")
        var s = session(relayAllowed: false, verdicts: ["rcpt": .accept(text: "welcome")])
        _ = s.handle(.line("EHLO client"))
        _ = s.handle(.line("MAIL FROM:<a@example.org>"))
        // An explicit accept overrides the relay default.
        #expect(s.handle(.line("RCPT TO:<b@example.com>")) == [.reply(SMTPReply(250, EnhancedStatusCode(2, 1, 5), "welcome"))])
        var refusing = session(verdicts: ["mail": .reject(refusal)])
        _ = refusing.handle(.line("EHLO client"))
        #expect(refusing.handle(.line("MAIL FROM:<a@example.org>")) == [.reply(refusal)])
        #expect(refusing.transaction == nil)
        var closing = session(verdicts: ["helo": .disconnect(SMTPReply(421, EnhancedStatusCode(4, 7, 0), "bye"))])
        #expect(closing.handle(.line("EHLO client")) == [.close(SMTPReply(421, EnhancedStatusCode(4, 7, 0), "bye"))])
        #expect(closing.helo == nil)
    }

    @Test func rcptRewriteIsKept() {
        var s = session(rewrite: "rewritten")
        _ = s.handle(.line("EHLO client"))
        _ = s.handle(.line("MAIL FROM:<a@example.org>"))
        _ = s.handle(.line("RCPT TO:<b@example.com>"))
        #expect(s.transaction?.recipients.map(\.description) == ["rewritten@example.com"])
    }

    @Test func authNeedsTLSOffLoopback() {
        let policy = FixedPolicy()
        policy.authPermitted = false
        var s = SMTPServerSession(policy: policy)
        _ = s.handle(.line("EHLO client"))
        #expect(s.handle(.line("AUTH PLAIN AGEAcmlnaHQ=")) == [.reply(.authenticationNeedsTLS)])
    }

    @Test func authPlainAndLoginExchanges() {
        var s = session()
        _ = s.handle(.line("EHLO client"))
        // PLAIN with a wrong password, then LOGIN step by step with the right one.
        #expect(s.handle(.line("AUTH PLAIN AGEAd3Jvbmc=")) == [.reply(.authenticationFailed), .pause(seconds: 1)])
        #expect(s.handle(.line("AUTH LOGIN")) == [.reply(SMTPReply(334, nil, "VXNlcm5hbWU6"))])
        #expect(s.handle(.line("YQ==")) == [.reply(SMTPReply(334, nil, "UGFzc3dvcmQ6"))])
        #expect(s.handle(.line("cmlnaHQ=")) == [.reply(.authenticationSucceeded)])
        #expect(s.handle(.line("AUTH PLAIN AGEAcmlnaHQ=")) == [.reply(.alreadyAuthenticated)])
    }

    @Test func threeFailedAuthenticationsClose() {
        var s = session()
        _ = s.handle(.line("EHLO client"))
        _ = s.handle(.line("AUTH PLAIN AGEAd3Jvbmc="))
        _ = s.handle(.line("AUTH PLAIN AGEAd3Jvbmc="))
        #expect(s.handle(.line("AUTH PLAIN AGEAd3Jvbmc=")) == [.reply(.authenticationFailed), .close(.tooManyAuthenticationFailures)])
    }

    @Test func authExchangeCanBeCancelled() {
        var s = session()
        _ = s.handle(.line("EHLO client"))
        _ = s.handle(.line("AUTH PLAIN"))
        #expect(s.handle(.line("*")) == [.reply(.authenticationCancelled)])
        #expect(s.handle(.line("NOOP")) == [.reply(.ok)])
    }
}
