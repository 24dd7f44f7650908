@testable import Relais
import SMTPCore
import Testing

/// The post-DATA rules the server and `relais simulate` share.
struct MessageAcceptanceTests {
    private static let a = MailboxAddress(localPart: "a", domain: "x.example")
    private static let b = MailboxAddress(localPart: "b", domain: "y.example")
    private static let maildir = [RouteTarget.maildir(path: "/m")]
    private static let rejected = SMTPReply(550, EnhancedStatusCode(5, 7, 1), "no")
    private static let deferred = SMTPReply(451, EnhancedStatusCode(4, 7, 1), "later")

    private static func smarthost(limit: Int?) -> [RouteTarget] {
        [.smarthost(Smarthost(name: "up", host: "up.example", port: 25, tls: .none, verifyCertificate: false, caFile: nil,
                              authUsername: nil, authMechanism: nil, allowInsecureAuth: false, maxConnections: 1, rate: nil,
                              messagesPerConnection: 1, timeout: 1, idleTimeout: 1, maxRecipients: nil,
                              maxMessageSize: limit, headers: nil))]
    }

    @Test func verdictsOfTheDataHook() {
        #expect(MessageAcceptance.outcome(of: MessageDecision(verdict: .reject(Self.rejected), routes: []), size: 1)
                == .refuse(Self.rejected))
        #expect(MessageAcceptance.outcome(of: MessageDecision(verdict: .disconnect(Self.deferred), routes: []), size: 1)
                == .disconnect(Self.deferred))
        #expect(MessageAcceptance.outcome(of: MessageDecision(verdict: .discard, routes: []), size: 1)
                == .discard(reason: "discarded by the data hook"))
        #expect(MessageAcceptance.outcome(of: MessageDecision(verdict: nil, routes: []), size: 1)
                == .discard(reason: "the data hook removed every recipient"))
    }

    @Test func oneRefusedRecipientIsBouncedNotRefused() {
        let routed = RecipientRoute(recipient: Self.a, targets: Self.maildir)
        let refused = RecipientRoute(recipient: Self.b, refusal: Self.rejected)
        #expect(MessageAcceptance.outcome(of: MessageDecision(verdict: nil, routes: [routed, refused]), size: 1)
                == .queue(routed: [routed], refused: [refused]))
    }

    @Test func everyRecipientRefusedRefusesTheMessage() {
        let refused = RecipientRoute(recipient: Self.b, refusal: Self.rejected)
        #expect(MessageAcceptance.outcome(of: MessageDecision(verdict: nil, routes: [refused]), size: 1)
                == .refuse(Self.rejected))
    }

    @Test func oneDeferredRouteDefersTheWholeMessage() {
        let routes = [RecipientRoute(recipient: Self.a, targets: Self.maildir), RecipientRoute(recipient: Self.b, refusal: Self.deferred)]
        #expect(MessageAcceptance.outcome(of: MessageDecision(verdict: .accept(text: nil), routes: routes), size: 1)
                == .refuse(Self.deferred))
    }

    @Test(arguments: [(100, nil), (100, 100), (101, 100)] as [(Int, Int?)])
    func providerSizeLimit(_ size: Int, _ limit: Int?) {
        let route = RecipientRoute(recipient: Self.a, targets: Self.smarthost(limit: limit))
        let outcome = MessageAcceptance.outcome(of: MessageDecision(verdict: nil, routes: [route]), size: size)
        if let limit, size > limit {
            #expect(outcome == .refuse(SMTPReply(552, EnhancedStatusCode(5, 3, 4), "Error: message too big for up (100 bytes at most)")))
        } else {
            #expect(outcome == .queue(routed: [route], refused: []))
        }
    }

    @Test func loops() {
        #expect(MessageAcceptance.loopRefusal(receivedFields: 100, limits: SMTPLimits()) == nil)
        #expect(MessageAcceptance.loopRefusal(receivedFields: 101, limits: SMTPLimits()) == .mailLoop)
    }
}
