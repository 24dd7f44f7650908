import SMTPCore
import Testing

/// EHLO replies read into capabilities, as the client side sees them.
struct ServerCapabilitiesTests {
    private let reply = SMTPReply(250, nil, [
        "mx.example greets relay.test", "PIPELINING", "SIZE 10240000", "auth plain LOGIN", "8BITMIME", "DSN",
        "ENHANCEDSTATUSCODES",
    ])

    @Test(arguments: [("PIPELINING", true), ("pipelining", true), ("8BITMIME", true), ("CHUNKING", false),
                      ("SMTPUTF8", false), ("DSN", true), ("mx.example", false)])
    func offers(_ keyword: String, _ offered: Bool) {
        #expect(ServerCapabilities(ehloReply: reply).offers(keyword) == offered)
    }

    @Test func readsSizeAndMechanisms() {
        let capabilities = ServerCapabilities(ehloReply: reply)
        #expect(capabilities.sizeLimit == 10_240_000)
        #expect(capabilities.authMechanisms == ["PLAIN", "LOGIN"])
    }

    @Test(arguments: [["x greets", "SIZE 0"], ["x greets", "SIZE"], ["x greets", "SIZE lots"], ["HELO only"]])
    func noSizeLimit(_ lines: [String]) {
        #expect(ServerCapabilities(ehloReply: SMTPReply(250, nil, lines)).sizeLimit == nil)
    }

    @Test func heloOffersNothing() {
        #expect(!ServerCapabilities().offers("PIPELINING"))
        #expect(ServerCapabilities().authMechanisms.isEmpty)
    }

    @Test(arguments: ["a@example.org", "\"john@doe\"@example.org", "Postmaster", "ü@bücher.example", "x@[192.0.2.1]"])
    func storedMailboxRoundTrips(_ text: String) {
        #expect(MailboxAddress(storedText: text).description == text)
        #expect(ReversePath(storedText: text).description == text)
    }

    @Test func clientCommandsEncodeFromStoredPaths() {
        let mail = SMTPCommand.mail(ReversePath(storedText: ""), ESMTPParameters([.init(keyword: "size", value: "12")]))
        #expect(mail.line == "MAIL FROM:<> SIZE=12")
        let rcpt = SMTPCommand.rcpt(MailboxAddress(storedText: "b@example.net"),
                                    ESMTPParameters([.init(keyword: "NOTIFY", value: "SUCCESS,FAILURE")]))
        #expect(rcpt.line == "RCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE")
        #expect(SMTPCommand.auth(mechanism: "PLAIN", initialResponse: "AGEAYg==").line == "AUTH PLAIN AGEAYg==")
    }
}
