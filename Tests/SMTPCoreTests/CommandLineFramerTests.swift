import NIOCore
import SMTPCore
import Testing

struct CommandLineFramerTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var input: String
        var frames: [CommandLineFramer.Frame]
        var testDescription: String { input.debugDescription }
    }

    static let cases: [Case] = [
        Case(input: "NOOP\r\n", frames: [.line("NOOP")]),
        Case(input: "NOOP\r\nRSET\r\n", frames: [.line("NOOP"), .line("RSET")]),
        Case(input: "NOOP\r\nRSE", frames: [.line("NOOP")]),
        Case(input: "NOOP\n", frames: [.invalid(.bareLineFeed)]),
        Case(input: "NO\rOP\r\n", frames: [.invalid(.bareCarriageReturn)]),
        Case(input: "NOOP\r\r\n", frames: [.invalid(.bareCarriageReturn)]),
        Case(input: "NO\0OP\r\n", frames: [.invalid(.nulCharacter)]),
        Case(input: "MAIL FROM:<a@b>\nRCPT TO:<c@d>\r\n", frames: [.invalid(.bareLineFeed), .line("RCPT TO:<c@d>")]),
        Case(input: String(repeating: "x", count: 510) + "\r\n", frames: [.line(String(repeating: "x", count: 510))]),
        Case(input: String(repeating: "x", count: 511) + "\r\nNOOP\r\n", frames: [.invalid(.lineTooLong), .line("NOOP")]),
        Case(input: String(repeating: "x", count: 5000) + "\r\nNOOP\r\n", frames: [.invalid(.lineTooLong), .line("NOOP")]),
    ]

    @Test(arguments: cases)
    func framesWholeInput(_ testCase: Case) {
        var framer = CommandLineFramer()
        var buffer = ByteBuffer(string: testCase.input)
        var frames: [CommandLineFramer.Frame] = []
        while let frame = framer.next(&buffer) { frames.append(frame) }
        #expect(frames == testCase.frames)
    }

    /// The same input split at every byte gives the same frames.
    @Test(arguments: cases.filter { $0.input.utf8.count < 1000 })
    func framesInputSplitAtEveryByte(_ testCase: Case) {
        let bytes = Array(testCase.input.utf8)
        for split in 0...bytes.count {
            var framer = CommandLineFramer()
            var buffer = ByteBuffer(bytes: bytes[..<split])
            var frames: [CommandLineFramer.Frame] = []
            while let frame = framer.next(&buffer) { frames.append(frame) }
            buffer.writeBytes(bytes[split...])
            while let frame = framer.next(&buffer) { frames.append(frame) }
            #expect(frames == testCase.frames, "split at \(split)")
        }
    }
}
