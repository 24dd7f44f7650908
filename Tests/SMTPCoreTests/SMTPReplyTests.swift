import NIOCore
import SMTPCore
import Testing

struct SMTPReplyTests {
    @Test func encodesMultilineWithEnhancedCodes() {
        var buffer = ByteBuffer()
        SMTPReply(250, EnhancedStatusCode(2, 0, 0), ["first", "second"]).write(into: &buffer)
        SMTPReply(220, nil, "host ESMTP").write(into: &buffer)
        #expect(String(buffer: buffer) == "250-2.0.0 first\r\n250 2.0.0 second\r\n220 host ESMTP\r\n")
    }

    static let replies: [SMTPReply] = [
        SMTPReply(220, nil, "mx.example ESMTP"),
        SMTPReply(250, nil, ["mx.example greets you", "PIPELINING", "SIZE 100", "8BITMIME"]),
        SMTPReply(550, EnhancedStatusCode(5, 7, 1), "Relay access denied"),
        SMTPReply(451, EnhancedStatusCode(4, 3, 0), ["try", "again"]),
        SMTPReply(354, nil, "go ahead"),
    ]

    @Test(arguments: replies)
    func parsesWhatItEncodes(_ reply: SMTPReply) throws {
        var buffer = ByteBuffer()
        reply.write(into: &buffer)
        let bytes = Array(buffer.readableBytesView)
        for split in 0...bytes.count {
            var parser = SMTPReplyParser()
            var input = ByteBuffer(bytes: bytes[..<split])
            var parsed = try parser.parse(&input)
            input.writeBytes(bytes[split...])
            if parsed == nil { parsed = try parser.parse(&input) }
            #expect(parsed == reply)
        }
    }

    @Test(arguments: [("2.0.0", EnhancedStatusCode(2, 0, 0)), ("5.7.1", EnhancedStatusCode(5, 7, 1)), ("4.4.123", EnhancedStatusCode(4, 4, 123))])
    func parsesEnhancedCodes(_ text: String, _ expected: EnhancedStatusCode) {
        #expect(EnhancedStatusCode(parsing: Substring(text)) == expected)
    }

    @Test(arguments: ["", "2.0", "2.0.", "3.0.0", "22.0.0", "2.1234.0", "2..0", "2.0.0.0", "+2.0.0", "2.+1.0", "2.0.0 ", "٢.0.0"])
    func refusesWhatIsNotAnEnhancedCode(_ text: String) {
        #expect(EnhancedStatusCode(parsing: Substring(text)) == nil)
    }

    @Test func stripsTheEnhancedCodeFromEveryLineThatCarriesIt() throws {
        var parser = SMTPReplyParser()
        var bytes = ByteBuffer(string: "550-5.7.1 first\r\n550-5.7.1  second\r\n550 plain last\r\n")
        let reply = try #require(try parser.parse(&bytes))
        #expect(reply.enhanced == EnhancedStatusCode(5, 7, 1))
        #expect(reply.lines == ["first", "second", "plain last"])
        var mismatched = ByteBuffer(string: "250 4.0.0 class differs\r\n")
        #expect(try parser.parse(&mismatched) == SMTPReply(250, nil, ["4.0.0 class differs"]))
    }

    @Test func toleratesBareLineFeedsFromServers() throws {
        var parser = SMTPReplyParser()
        var input = ByteBuffer(string: "250-one\n250 two\n")
        #expect(try parser.parse(&input) == SMTPReply(250, nil, ["one", "two"]))
    }

    static let malformed: [String] = ["hello\r\n", "25\r\n", "250-a\r\n251 b\r\n", "250_x\r\n", "999 x\r\n"]

    @Test(arguments: malformed)
    func refusesMalformedReplies(_ text: String) {
        var parser = SMTPReplyParser()
        var input = ByteBuffer(string: text)
        #expect(throws: SMTPSyntaxError.self) {
            while try parser.parse(&input) == nil, input.readableBytes > 0 {}
        }
    }

    @Test func parsesParameters() throws {
        let parameters = try ESMTPParameters.parse("SIZE=10 body=8BITMIME SMTPUTF8")
        #expect(parameters["size"] == "10")
        #expect(parameters["BODY"] == "8BITMIME")
        #expect(parameters.contains("SMTPUTF8"))
        #expect(parameters.description == "SIZE=10 BODY=8BITMIME SMTPUTF8")
        #expect(throws: SMTPSyntaxError.self) { try ESMTPParameters.parse("-BAD=1") }
        #expect(throws: SMTPSyntaxError.self) { try ESMTPParameters.parse("A=b=c") }
    }
}
