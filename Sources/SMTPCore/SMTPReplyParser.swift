import NIOCore

/// Reassembles replies from a server, one line at a time, for the client side.
///
/// ```
/// Reply-line = *( Reply-code "-" [ textstring ] CRLF )
///              Reply-code [ SP textstring ] CRLF      ; RFC 5321 4.2
/// ```
/// Replies from peers are read leniently (a bare LF ends a line too): a
/// client gains nothing by refusing a sloppy server's reply.
public struct SMTPReplyParser: Sendable {
    private var code: Int?
    private var lines: [String] = []
    private let maxLineLength: Int
    private let maxLines: Int

    public init(limits: SMTPLimits = SMTPLimits()) {
        self.maxLineLength = limits.replyLineLength
        self.maxLines = limits.replyLines
    }

    /// Consumes whole lines from `buffer`; returns a reply once its last line
    /// has arrived, nil while more bytes are needed.
    public mutating func parse(_ buffer: inout ByteBuffer) throws(SMTPSyntaxError) -> SMTPReply? {
        while let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - buffer.readerIndex
            guard length <= maxLineLength, lines.count < maxLines else { throw .replyTooLong }
            var line = buffer.readString(length: length) ?? ""
            buffer.moveReaderIndex(forwardBy: 1)
            if line.hasSuffix("\r") { line.removeLast() }
            if let reply = try take(line) { return reply }
        }
        if buffer.readableBytes > maxLineLength { throw .replyTooLong }
        return nil
    }

    private mutating func take(_ line: String) throws(SMTPSyntaxError) -> SMTPReply? {
        let bytes = Array(line.utf8)
        guard bytes.count >= 3, bytes[0...2].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let lineCode = Int(String(decoding: bytes[0...2], as: UTF8.self)),
              (200...599).contains(lineCode)
        else { throw .malformedReply(line) }
        if let code, code != lineCode { throw .malformedReply(line) }
        code = lineCode
        let separator: UInt8? = bytes.count > 3 ? bytes[3] : nil
        guard separator == nil || separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") else {
            throw .malformedReply(line)
        }
        lines.append(bytes.count > 4 ? String(decoding: bytes[4...], as: UTF8.self) : "")
        if separator == UInt8(ascii: "-") { return nil }
        defer { self.code = nil; self.lines = [] }
        return Self.reply(code: lineCode, lines: lines)
    }

    /// Splits off the enhanced status code when the first line starts with one
    /// whose class matches the reply code.
    private static func reply(code: Int, lines: [String]) -> SMTPReply {
        guard let first = lines.first,
              let token = first.split(separator: " ", maxSplits: 1).first,
              let enhanced = EnhancedStatusCode(parsing: token),
              enhanced.statusClass == code / 100
        else { return SMTPReply(code, nil, lines) }
        let prefix = enhanced.description
        let stripped = lines.map { line -> String in
            guard line.hasPrefix(prefix) else { return line }
            return String(line.dropFirst(prefix.count).drop(while: { $0 == " " }))
        }
        return SMTPReply(code, enhanced, stripped)
    }
}
