import SMTPCore
import Testing

struct SMTPCommandParserTests {
    static let good: [(String, SMTPCommand)] = [
        ("EHLO client.example", .ehlo("client.example")),
        ("ehlo [192.0.2.1]", .ehlo("[192.0.2.1]")),
        ("HELO client", .helo("client")),
        ("MAIL FROM:<a@example.com>", .mail(.mailbox(MailboxAddress(localPart: "a", domain: "example.com")), ESMTPParameters())),
        ("mail from:<>", .mail(.null, ESMTPParameters())),
        ("MAIL FROM: <a@example.com>", .mail(.mailbox(MailboxAddress(localPart: "a", domain: "example.com")), ESMTPParameters())),
        ("MAIL FROM:<a@example.com> SIZE=100 BODY=8BITMIME",
         .mail(.mailbox(MailboxAddress(localPart: "a", domain: "example.com")),
               ESMTPParameters([.init(keyword: "SIZE", value: "100"), .init(keyword: "BODY", value: "8BITMIME")]))),
        ("MAIL FROM:<\"a>b\"@example.com>", .mail(.mailbox(MailboxAddress(localPart: "\"a>b\"", domain: "example.com")), ESMTPParameters())),
        ("MAIL FROM:<@relay.example:a@example.com>", .mail(.mailbox(MailboxAddress(localPart: "a", domain: "example.com")), ESMTPParameters())),
        ("RCPT TO:<b@example.org>", .rcpt(MailboxAddress(localPart: "b", domain: "example.org"), ESMTPParameters())),
        ("RCPT TO:<Postmaster>", .rcpt(MailboxAddress(localPart: "Postmaster", domain: ""), ESMTPParameters())),
        ("rcpt to:<pOSTMASTER>", .rcpt(MailboxAddress(localPart: "pOSTMASTER", domain: ""), ESMTPParameters())),
        ("MAIL FROM:<\"a\\\">\"@example.com> SIZE=5",
         .mail(.mailbox(MailboxAddress(localPart: "\"a\\\">\"", domain: "example.com")), ESMTPParameters([.init(keyword: "SIZE", value: "5")]))),
        ("RCPT TO:<δοκιμή@παράδειγμα.δοκιμή>", .rcpt(MailboxAddress(localPart: "δοκιμή", domain: "παράδειγμα.δοκιμή"), ESMTPParameters())),
        ("DATA", .data),
        ("BDAT 1000", .bdat(size: 1000, last: false)),
        ("BDAT 0 LAST", .bdat(size: 0, last: true)),
        ("bdat 12 last", .bdat(size: 12, last: true)),
        ("RSET", .rset),
        ("NOOP anything", .noop),
        ("QUIT", .quit),
        ("VRFY someone", .vrfy("someone")),
        ("HELP", .help(nil)),
        ("STARTTLS", .startTLS),
        ("AUTH PLAIN AGEAYg==", .auth(mechanism: "PLAIN", initialResponse: "AGEAYg==")),
    ]

    @Test(arguments: good)
    func parsesAndEncodesBack(_ line: String, _ expected: SMTPCommand) throws {
        let command = try SMTPCommandParser().parse(line)
        #expect(command == expected)
        #expect(try SMTPCommandParser().parse(command.line) == expected)
    }

    static let bad: [(String, SMTPCommandError)] = [
        ("FROB", .unrecognized),
        ("", .unrecognized),
        ("EHLO", .arguments(verb: "EHLO", usage: "EHLO hostname")),
        ("MAIL FROM:a@example.com", .arguments(verb: "MAIL", usage: "MAIL FROM:<address>")),
        ("MAIL TO:<a@example.com>", .arguments(verb: "MAIL", usage: "MAIL FROM:<address>")),
        ("MAIL FROM:<a@example.com", .arguments(verb: "MAIL", usage: "MAIL FROM:<address>")),
        ("MAIL FROM:<a@example.com>x", .arguments(verb: "MAIL", usage: "MAIL FROM:<address>")),
        ("MAIL FROM:<a b@example.com>", .sender(.syntax("character not allowed in local part"))),
        ("MAIL FROM:<a@example.com> SIZE=", .parameters(.syntax("bad value for parameter SIZE"))),
        ("MAIL FROM:<a@example.com> SIZE=1 SIZE=2", .parameters(.syntax("parameter SIZE given twice"))),
        ("RCPT TO:<b>", .recipient(.syntax("address has no domain"))),
        ("RCPT TO:<Postmaster2>", .recipient(.syntax("address has no domain"))),
        ("MAIL FROM:<\"ab\\\">@example.com", .arguments(verb: "MAIL", usage: "MAIL FROM:<address>")),
        ("RCPT FROM:<b@example.org>", .arguments(verb: "RCPT", usage: "RCPT TO:<address>")),
        ("RCPT TO:<b@-bad.example>", .recipient(.syntax("domain label starts or ends with a hyphen"))),
        ("DATA now", .arguments(verb: "DATA", usage: "DATA")),
        ("BDAT", .arguments(verb: "BDAT", usage: "BDAT size [LAST]")),
        ("BDAT -1", .arguments(verb: "BDAT", usage: "BDAT size [LAST]")),
        ("BDAT 10 FIRST", .arguments(verb: "BDAT", usage: "BDAT size [LAST]")),
        ("BDAT 99999999999999999999", .arguments(verb: "BDAT", usage: "BDAT size [LAST]")),
    ]

    @Test(arguments: bad)
    func refuses(_ line: String, _ expected: SMTPCommandError) {
        #expect(throws: expected) { try SMTPCommandParser().parse(line) }
    }

    @Test func errorsMapToPreciseReplies() {
        #expect(SMTPCommandError.unrecognized.reply.code == 500)
        #expect(SMTPCommandError.sender(.syntax("x")).reply.enhanced == EnhancedStatusCode(5, 1, 7))
        #expect(SMTPCommandError.recipient(.syntax("x")).reply.enhanced == EnhancedStatusCode(5, 1, 3))
        #expect(SMTPCommandError.parameters(.syntax("x")).reply.code == 555)
    }
}
