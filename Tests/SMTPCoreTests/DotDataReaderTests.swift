import NIOCore
import SMTPCore
import Testing

struct DotDataReaderTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        /// Bytes after the DATA command's CRLF.
        var wire: String
        /// Message content after unstuffing, or nil when refused.
        var content: String?
        var violation: MessageTextViolation?
        /// Bytes left over after the end of data (pipelined commands).
        var rest: String = ""
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "simple", wire: "Subject: a\r\n\r\nbody\r\n.\r\n", content: "Subject: a\r\n\r\nbody\r\n"),
        Case(name: "empty message", wire: ".\r\n", content: ""),
        Case(name: "dot-stuffed line", wire: "..hidden\r\n.\r\n", content: ".hidden\r\n"),
        Case(name: "lone stuffed dot", wire: "a\r\n..\r\n.\r\n", content: "a\r\n.\r\n"),
        Case(name: "dot not at line start", wire: "a.b\r\n.\r\n", content: "a.b\r\n"),
        Case(name: "pipelined command kept", wire: "x\r\n.\r\nQUIT\r\n", content: "x\r\n", rest: "QUIT\r\n"),
        // SMTP smuggling: none of these end the data; the message is refused
        // and what follows the real end stays a command.
        Case(name: "LF.LF", wire: "a\n.\nMAIL FROM:<x@y>\r\n.\r\n", content: nil, violation: .bareLineFeed),
        Case(name: "LF.CRLF", wire: "a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n", content: nil, violation: .bareLineFeed),
        Case(name: "CRLF.LF", wire: "a\r\n.\nMAIL FROM:<x@y>\r\n.\r\n", content: nil, violation: .bareLineFeed),
        Case(name: "CR.CR", wire: "a\r.\rMAIL FROM:<x@y>\r\n.\r\n", content: nil, violation: .bareCarriageReturn),
        Case(name: "CRLF.CR", wire: "a\r\n.\rMAIL FROM:<x@y>\r\n.\r\n", content: nil, violation: .bareCarriageReturn),
        Case(name: "CR.CRLF", wire: "a\r.\r\nMAIL FROM:<x@y>\r\n.\r\n", content: nil, violation: .bareCarriageReturn),
        Case(name: "bare LF in line", wire: "a\nb\r\n.\r\n", content: nil, violation: .bareLineFeed),
        Case(name: "bare CR in line", wire: "a\rb\r\n.\r\n", content: nil, violation: .bareCarriageReturn),
        Case(name: "NUL", wire: "a\0b\r\n.\r\n", content: nil, violation: .nulCharacter),
        Case(name: "NUL after dot", wire: ".\0\r\n.\r\n", content: nil, violation: .nulCharacter),
        Case(name: "998 octets fit", wire: String(repeating: "x", count: 998) + "\r\n.\r\n",
             content: String(repeating: "x", count: 998) + "\r\n"),
        Case(name: "999 octets too long", wire: String(repeating: "x", count: 999) + "\r\n.\r\n",
             content: nil, violation: .lineTooLong),
        Case(name: "stuffed dot counts", wire: "." + String(repeating: "x", count: 998) + "\r\n.\r\n",
             content: nil, violation: .lineTooLong),
    ]

    @Test(arguments: cases)
    func readsWholeInput(_ testCase: Case) {
        check(testCase, splits: [])
    }

    /// Feeding the input split at every byte gives the same result.
    @Test(arguments: cases.filter { $0.wire.utf8.count < 200 })
    func readsInputSplitAtEveryByte(_ testCase: Case) {
        for split in 0...testCase.wire.utf8.count { check(testCase, splits: [split]) }
    }

    private func check(_ testCase: Case, splits: [Int]) {
        var reader = DotDataReader()
        var output = ByteBuffer()
        let bytes = Array(testCase.wire.utf8)
        var input = ByteBuffer()
        var completion: DotDataReader.Completion?
        var start = 0
        for end in splits + [bytes.count] where completion == nil {
            input.writeBytes(bytes[start..<end])
            start = end
            completion = reader.consume(&input, into: &output)
        }
        input.writeBytes(bytes[start...])
        #expect(completion != nil, "end of data not found")
        #expect(completion?.violation == testCase.violation)
        if let content = testCase.content { #expect(String(buffer: output) == content) }
        #expect(String(buffer: input) == testCase.rest)
    }

    @Test func oversizeMessageIsReadToTheEnd() {
        var limits = SMTPLimits()
        limits.maxMessageSize = 10
        var reader = DotDataReader(limits: limits)
        var input = ByteBuffer(string: "0123456789\r\nmore text\r\n.\r\nQUIT\r\n")
        var output = ByteBuffer()
        let completion = reader.consume(&input, into: &output)
        #expect(completion?.exceedsSizeLimit == true)
        #expect(completion?.size == 23)
        #expect(String(buffer: input) == "QUIT\r\n")
        #expect(output.readableBytes <= 12)
    }

    @Test func stufferAndReaderRoundTrip() {
        let texts = ["plain\r\n", ".starts with dot\r\n..two\r\n", "no final newline", "", ".\r\n.\r\n", "a\r\n.b\r\n"]
        for text in texts {
            var stuffer = DotStuffer()
            var pieces: [ByteBuffer] = []
            // Split the text into two chunks to exercise state across chunks.
            let bytes = Array(text.utf8)
            let middle = bytes.count / 2
            stuffer.stuff(ByteBuffer(bytes: bytes[..<middle]), into: &pieces)
            stuffer.stuff(ByteBuffer(bytes: bytes[middle...]), into: &pieces)
            stuffer.finish(into: &pieces)
            var wire = Self.joined(pieces)
            var reader = DotDataReader()
            var output = ByteBuffer()
            let completion = reader.consume(&wire, into: &output)
            #expect(completion?.violation == nil)
            let expected = text.isEmpty || text.hasSuffix("\r\n") ? text : text + "\r\n"
            #expect(String(buffer: output) == expected, "\(text.debugDescription)")
            #expect(wire.readableBytes == 0)
        }
    }

    /// The reader looks at eight bytes at a time: a CR, LF or NUL is found
    /// wherever it falls in a word, next to tabs and 8-bit bytes.
    @Test(arguments: [("\n", MessageTextViolation.bareLineFeed), ("\r", .bareCarriageReturn), ("\0", .nulCharacter)])
    func findsAForbiddenByteAtEveryPosition(_ byte: String, _ violation: MessageTextViolation) {
        let line = Array("\tSubject: caf\u{E9} \u{1}\u{7F} and some more words to fill words".utf8)
        for position in 0...line.count {
            var wire = line
            wire.insert(contentsOf: Array(byte.utf8), at: position)
            if position == line.count && byte == "\r" { wire.append(UInt8(ascii: "x")) }
            var reader = DotDataReader()
            var input = ByteBuffer(bytes: wire + Array("\r\n.\r\n".utf8))
            var output = ByteBuffer()
            #expect(reader.consume(&input, into: &output)?.violation == violation, "at \(position)")
        }
    }

    /// Random text with stuffed dots, long lines and 8-bit bytes comes back
    /// unchanged through the stuffer and the reader, whatever the chunking.
    @Test func randomTextRoundTripsInRandomChunks() {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [UInt8] = [UInt8(ascii: "."), 9, 0x41, 0x7A, 0xC3, 0xA9, 0x20]
        for _ in 0..<200 {
            var text: [UInt8] = []
            for _ in 0..<Int.random(in: 0...30, using: &generator) {
                let length = Int.random(in: 0...300, using: &generator)
                let line = (0..<length).map { _ in alphabet.randomElement(using: &generator) ?? 0x41 }
                text += line + [13, 10]
            }
            var stuffer = DotStuffer()
            var pieces: [ByteBuffer] = []
            var offset = 0
            while offset < text.count {
                let end = min(text.count, offset + Int.random(in: 1...97, using: &generator))
                stuffer.stuff(ByteBuffer(bytes: text[offset..<end]), into: &pieces)
                offset = end
            }
            stuffer.finish(into: &pieces)
            var wire = Self.joined(pieces)
            var reader = DotDataReader()
            var output = ByteBuffer()
            var completion: DotDataReader.Completion?
            while completion == nil, wire.readableBytes > 0 {
                var chunk = wire.readSlice(length: min(wire.readableBytes, Int.random(in: 1...97, using: &generator))) ?? ByteBuffer()
                completion = reader.consume(&chunk, into: &output)
                #expect(chunk.readableBytes == 0)
            }
            #expect(completion?.violation == nil)
            #expect(completion?.size == text.count)
            #expect(Array(output.readableBytesView) == text)
        }
    }

    @Test func stufferDoublesLeadingDots() {
        var stuffer = DotStuffer()
        var pieces: [ByteBuffer] = []
        stuffer.stuff(ByteBuffer(string: ".a\r\nb.\r\n."), into: &pieces)
        stuffer.stuff(ByteBuffer(string: "c\r\n"), into: &pieces)
        stuffer.finish(into: &pieces)
        #expect(String(buffer: Self.joined(pieces)) == "..a\r\nb.\r\n..c\r\n.\r\n")
    }

    /// Only a dot that begins a line is doubled, wherever the chunks are cut:
    /// a chunk that begins with a dot continues the previous chunk's line.
    @Test func stufferLeavesDotsInsideLinesAlone() {
        var stuffer = DotStuffer()
        var pieces: [ByteBuffer] = []
        for chunk in ["www", ".example.org\r", "\n", ".", "com. end.\r\nx.y\r\n"] {
            stuffer.stuff(ByteBuffer(string: chunk), into: &pieces)
        }
        stuffer.finish(into: &pieces)
        #expect(String(buffer: Self.joined(pieces)) == "www.example.org\r\n..com. end.\r\nx.y\r\n.\r\n")
    }

    /// The stuffer sends the text it is given, not a copy: a text with no
    /// dot to double goes as one piece sharing the text's storage.
    @Test func stufferSharesTheTextItSends() {
        let text = ByteBuffer(string: "Subject: hi\r\n\r\nno dots here\r\n")
        var stuffer = DotStuffer()
        var pieces: [ByteBuffer] = []
        stuffer.stuff(text, into: &pieces)
        stuffer.finish(into: &pieces)
        #expect(pieces.count == 2)
        #expect(pieces[0].storageCapacity == text.storageCapacity)
        #expect(pieces[0].withUnsafeReadableBytes { $0.baseAddress } == text.withUnsafeReadableBytes { $0.baseAddress })
    }

    static func joined(_ pieces: [ByteBuffer]) -> ByteBuffer {
        pieces.reduce(into: ByteBuffer()) { wire, piece in
            var piece = piece
            wire.writeBuffer(&piece)
        }
    }
}

struct ChunkTextValidatorTests {
    static let cases: [([String], MessageTextViolation?)] = [
        (["a\r\nb\r\n"], nil),
        (["a\r", "\nb\r\n"], nil),
        (["a\nb\r\n"], .bareLineFeed),
        (["a\r", "b\r\n"], .bareCarriageReturn),
        (["a\r"], .bareCarriageReturn),
        (["a\0\r\n"], .nulCharacter),
        (["\r\n.\n"], .bareLineFeed),
        ([String(repeating: "x", count: 998) + "\r\n"], nil),
        ([String(repeating: "x", count: 600), String(repeating: "x", count: 399) + "\r\n"], .lineTooLong),
    ]

    @Test(arguments: cases)
    func validatesChunks(_ chunks: [String], _ expected: MessageTextViolation?) {
        var validator = ChunkTextValidator()
        for chunk in chunks { validator.check(ByteBuffer(string: chunk)) }
        validator.finish()
        #expect(validator.violation == expected)
    }
}
