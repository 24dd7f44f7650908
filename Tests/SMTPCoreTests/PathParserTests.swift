import SMTPCore
import Testing

struct PathParserTests {
    static let goodMailboxes: [String] = [
        "user@example.com",
        "first.last+tag@sub.example.co.uk",
        "!#$%&'*+-/=?^_`{|}~@example.com",
        "\"john doe\"@example.com",
        "\"quoted\\\"quote\"@example.com",
        "\"a@b\"@example.com",
        "user@[192.0.2.1]",
        "user@[IPv6:2001:db8::1]",
        "user@[IPv6:::1]",
        "user@[IPv6:2001:db8:0:0:0:0:0:1]",
        "user@[IPv6:::ffff:192.0.2.1]",
        "user@[x-tag:content]",
        "пользователь@пример.рф",
        "用户@例子.广告",
        String(repeating: "a", count: 64) + "@example.com",
    ]

    @Test(arguments: goodMailboxes)
    func acceptsMailbox(_ text: String) throws {
        let mailbox = try PathParser().mailbox(Substring(text))
        #expect(mailbox.description == text)
    }

    static let badMailboxes: [String] = [
        "user",
        "@example.com",
        "user@",
        "a..b@example.com",
        ".a@example.com",
        "a.@example.com",
        "a b@example.com",
        "a\u{0}b@example.com",
        "\"unterminated@example.com",
        "\"escaped closing quote\\\"@example.com",
        "\"bad escape\\\u{1}\"@example.com",
        "\"escaped non-ASCII\\é\"@example.com",
        "\"bad\u{7}ctl\"@example.com",
        "user@exa mple.com",
        "user@example..com",
        "user@example.com.",
        "user@-example.com",
        "user@[192.0.2.256]",
        "user@[192.0.2]",
        "user@[IPv6:1:::2]",
        "user@[IPv6:12345::]",
        "user@[IPv6::1]",
        "user@[192.0.2.1",
        String(repeating: "a", count: 65) + "@example.com",
        "a@" + String(repeating: "b", count: 64) + ".example",
    ]

    @Test(arguments: badMailboxes)
    func refusesMailbox(_ text: String) {
        #expect(throws: SMTPSyntaxError.self) { try PathParser().mailbox(Substring(text)) }
    }

    @Test func asciiOnlyParserRefusesUTF8() {
        let parser = PathParser(allowUTF8: false)
        #expect(throws: SMTPSyntaxError.self) { try parser.mailbox("пользователь@example.com") }
        #expect(throws: SMTPSyntaxError.self) { try parser.mailbox("user@пример.рф") }
    }

    @Test func utf8AddressesNeedSMTPUTF8() throws {
        #expect(try PathParser().mailbox("用户@example.com").needsSMTPUTF8)
        #expect(try !PathParser().mailbox("user@example.com").needsSMTPUTF8)
    }

    @Test func nullAndSourceRoutedPaths() throws {
        #expect(try PathParser().reversePath("<>") == .null)
        #expect(try PathParser().reversePath("<@a.example,@b.example:u@c.example>").description == "u@c.example")
        #expect(throws: SMTPSyntaxError.self) { try PathParser().reversePath("u@c.example") }
        #expect(throws: SMTPSyntaxError.self) { try PathParser().forwardPath("<>") }
        let longPath = "<" + String(repeating: "a", count: 60) + "@" + String(repeating: "b.", count: 100) + "example>"
        #expect(throws: SMTPSyntaxError.self) { try PathParser().forwardPath(Substring(longPath)) }
    }
}
