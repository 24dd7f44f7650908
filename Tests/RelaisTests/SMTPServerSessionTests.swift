@testable import Relais
import SMTPCore
import Testing

/// The dialogue rules, checked on the state machine alone, without sockets.
struct SMTPServerSessionTests {
    private func session(relayAllowed: Bool = true, maxRecipients: Int = 1000, maxErrors: Int = 20) -> SMTPServerSession {
        var limits = SMTPLimits()
        limits.maxRecipients = maxRecipients
        return SMTPServerSession(hostname: "relay.test", relayAllowed: relayAllowed, limits: limits, maxErrors: maxErrors)
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
}
