import Foundation
@testable import Relais
import NIOCore
import Testing

/// `JSONReader` reads the spool's envelope lines and state records as
/// `JSONDecoder` does, and refuses (so the caller falls back to
/// `JSONDecoder`) whatever it cannot read exactly.
struct JSONReaderTests {
    private func read<Value>(_ json: [UInt8], by read: (inout JSONReader) throws -> Value) throws -> Value {
        try json.withUnsafeBytes { try JSONReader.read($0, by: read) }
    }

    private func readString(_ json: String) throws -> String {
        try read(Array(json.utf8)) { try $0.readString() }
    }

    /// An array of integers, or an object of them as `name=value`.
    private func integers(_ json: String) throws -> [String] {
        try read(Array(json.utf8)) { reader in
            var values: [String] = []
            if json.hasPrefix("{") {
                try reader.readObject { reader, name in values.append("\(name)=\(try reader.readInt())") }
            } else {
                try reader.readArray { values.append(String(try $0.readInt())) }
            }
            return values
        }
    }

    /// Strings of every kind of character, written by `JSONEncoder` and by
    /// the spool's own writer, read back as they were.
    @Test func stringsReadBackAsJSONEncoderWroteThem() throws {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [Unicode.Scalar] = ["a", "\"", "\\", "/", "\u{0}", "\u{1F}", "\n", "\t", "\u{7F}", "\u{E9}",
                                          "\u{2028}", "\u{FFFF}", "\u{1F600}", "\u{10FFFF}", " ", "{", "]"]
        for _ in 0 ..< 500 {
            let length = Int.random(in: 0 ... 12, using: &generator)
            var string = ""
            for _ in 0 ..< length { string.unicodeScalars.append(alphabet.randomElement(using: &generator) ?? "a") }
            let encoded = try #require(String(data: try JSONEncoder().encode([string]), encoding: .utf8))
            #expect(try readString(String(encoded.dropFirst().dropLast())) == string)
        }
        #expect(try readString(#""\ud83d\ude00 \u00e9\/\b\f\r""#) == "\u{1F600} \u{E9}/\u{8}\u{C}\r")
    }

    @Test(arguments: [
        #""unterminated"#, "\"raw\ncontrol\"", #""\x41""#, #""\ud83d alone""#, #""\ude00""#, #""\u12g4""#, #""\u12""#,
    ])
    func refusesStringsThatAreNotJSON(_ json: String) {
        #expect(throws: JSONReader.Unreadable.self) { try readString(json) }
    }

    @Test func refusesStringsThatAreNotUTF8() {
        #expect(throws: JSONReader.Unreadable.self) {
            try read([0x22, 0x61, 0xFF, 0x22]) { try $0.readString() }
        }
    }

    @Test func readsNumbersAsRFC8259WritesThem() throws {
        for (json, value) in [("0", 0.0), ("-0", 0), ("12", 12), ("-3.25", -3.25), ("1e5", 1e5), ("1E-5", 1e-5), ("2.5e+10", 2.5e10)] {
            #expect(try read(Array(json.utf8)) { try $0.readDouble() } == value)
        }
    }

    @Test(arguments: ["01", "1.", ".5", "-", "1e", "+1"])
    func refusesNumbersThatAreNotJSON(_ json: String) {
        #expect(throws: JSONReader.Unreadable.self) { try read(Array(json.utf8)) { try $0.readDouble() } }
    }

    @Test func readsArraysAndObjects() throws {
        #expect(try integers("[]") == [])
        #expect(try integers("{}") == [])
        #expect(try integers(" [1, -2 ]") == ["1", "-2"])
        #expect(try integers(#"{"a": 1,"b" :-2}"#) == ["a=1", "b=-2"])
    }

    @Test(arguments: ["[1,]", "{\"a\":1,}", "{\"a\" 1}", "[1] x", "[1.5]", #"{"a":1,"a":2}"#])
    func refusesContainersThatAreNotJSONOrNameAFieldTwice(_ json: String) {
        #expect(throws: JSONReader.Unreadable.self) { try integers(json) }
    }

    @Test func refusesWordsCutShort() {
        #expect(throws: JSONReader.Unreadable.self) { try read(Array("tru".utf8)) { try $0.readBool() } }
        #expect(throws: JSONReader.Unreadable.self) { try read(Array("nul".utf8)) { try $0.readOptional { try $0.readInt() } } }
    }

    /// Envelope lines as the spool writes them are read by `JSONReader`
    /// alone, to the envelope and seal written, routes whose strings hold
    /// brackets and quotes included.
    @Test func envelopeLinesAreReadWithoutJSONDecoder() throws {
        var full = Envelope(id: "Q1", sender: "\"odd \\ local\"@example.org", recipients: ["caf\u{E9}@example.com", "nul\u{0}@x"],
                            smtpUTF8: true, body: "8BITMIME", receivedAt: 1_796_000_000.123_456, clientIP: "::1", helo: "h",
                            routes: [[.maildir(path: "mail/\"q\"")], [.mx(MXTarget())]])
        full.refused = [RefusedRecipient(recipient: "r@example.com", reply: "550 5.1.1 \"no\"", dsn: RecipientDSN(notify: ["NEVER"]))]
        full.ret = "HDRS"
        full.envid = "id+2B/\u{7F}"
        full.recipientDSN = [RecipientDSN(notify: ["SUCCESS"], orcpt: "rfc822;a@x.example"), RecipientDSN()]
        full.dkimSignatures = ["b": "DKIM-Signature: v=1; b=\r\n\tabc", "a": "x"]
        full.dkimForAll = ["a"]
        let plain = testEnvelope("Q2")
        var brackets = testEnvelope("Q3")
        brackets.routes = [[.maildir(path: "mail/]}\"[{\\")], [.maildir(path: "mail/\\\"],{\"x\":1}")]]
        let seal = SpoolSeal(contentSize: 4096, contentCRC32C: 0xFFFF_FFFF)
        for (envelope, seal) in [(full, seal), (full, nil), (plain, seal), (brackets, nil)] {
            var line = try envelope.encodedLine(seal: seal)
            line.moveWriterIndex(to: line.writerIndex - 1)
            let head = try SpoolFileHead.read(line)
            #expect(head.envelope == envelope)
            #expect(head.seal == seal)
        }
    }

    /// Lines not as the spool writes them read back as `JSONDecoder` reads
    /// them: escaped slashes and an exponent (by `JSONReader`), a field
    /// named twice and a field the reader does not know (refused by
    /// `JSONReader`, so by `JSONDecoder`: a field added to `Envelope` and
    /// not to the reader is never dropped).
    @Test func linesTheReaderRefusesAreReadByJSONDecoder() throws {
        let plain = #"{"id":"Q3","sender":"a\/b@x","recipients":["r@x"],"smtpUTF8":false,"receivedAt":1.5e9,"#
            + #""clientIP":"127.0.0.1","helo":"h"}"#
        let unknown = plain.replacingOccurrences(of: #""helo":"h""#, with: #""helo":"h","later":{"x":[1]}"#)
        let twice = plain.replacingOccurrences(of: #""helo":"h""#, with: #""helo":"h","helo":"i""#)
        for line in [plain, unknown, twice] {
            var file = ByteBuffer(string: line)
            file.writeString("\nbody")
            let expected = try JSONDecoder().decode(Envelope.self, from: Data(line.utf8))
            #expect(try Envelope.decode(spoolFile: file).0 == expected)
            #expect(expected.sender == "a/b@x")
        }
        #expect(try SpoolFileHead.read(ByteBuffer(string: plain)).envelope == JSONDecoder().decode(Envelope.self, from: Data(plain.utf8)))
        for line in [unknown, twice] {
            #expect(throws: JSONReader.Unreadable.self) { try SpoolFileHead.read(ByteBuffer(string: line)) }
        }
    }

    /// State records as `StateRecord` writes them (`JSONEncoder`) read
    /// back by `JSONReader` alone; one missing a field it needs is refused.
    @Test func statesAreReadWithoutJSONDecoder() throws {
        var state = MessageState(envelope: full3())
        state.bounced = true
        state.recipients[0].status = .delivered
        state.recipients[0].attempts = 3
        state.recipients[0].lastResult = "250 2.0.0 \"queued\" \\ ok"
        state.recipients[0].lastTarget = "sink"
        state.recipients[0].nextAttempt = 1_796_000_123.25
        state.recipients[1].successNotice = "relayed"
        state.recipients[2].delayNoticed = false
        state.recipients[2].status = .failed
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for value in [state, MessageState(envelope: testEnvelope("Q4"))] {
            let json = try encoder.encode(value)
            #expect(try read(Array(json)) { try MessageState(reading: &$0) } == value)
        }
        #expect(throws: JSONReader.Unreadable.self) {
            try read(Array(#"{"recipients":[{"address":"a","attempts":0,"nextAttempt":0}],"bounced":false}"#.utf8)) {
                try MessageState(reading: &$0)
            }
        }
    }

    private func full3() -> Envelope {
        Envelope(id: "Q5", sender: "s@x", recipients: ["a@x", "b@x", "c@x"], smtpUTF8: false, body: nil,
                 receivedAt: 0, clientIP: "127.0.0.1", helo: "h")
    }
}
