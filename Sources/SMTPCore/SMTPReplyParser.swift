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
            var line = buffer.readableBytesView.prefix(length)
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            buffer.moveReaderIndex(forwardBy: length + 1)
            if let reply = try take(line) { return reply }
        }
        if buffer.readableBytes > maxLineLength { throw .replyTooLong }
        return nil
    }

    private mutating func take(_ line: ByteBufferView) throws(SMTPSyntaxError) -> SMTPReply? {
        let separator = line.dropFirst(3).first
        guard let lineCode = Self.replyCode(line), code == nil || code == lineCode,
              separator == nil || separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-")
        else { throw .malformedReply(String(decoding: line, as: UTF8.self)) }
        code = lineCode
        lines.append(String(decoding: line.dropFirst(4), as: UTF8.self))
        if separator == UInt8(ascii: "-") { return nil }
        defer { self.code = nil; self.lines = [] }
        return Self.reply(code: lineCode, lines: lines)
    }

    /// The three digits a reply line starts with, when they make a code from 200 to 599.
    private static func replyCode(_ line: ByteBufferView) -> Int? {
        guard line.count >= 3 else { return nil }
        var code = 0
        for byte in line.prefix(3) {
            guard byte.isASCIIDigit else { return nil }
            code = code * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return (200...599).contains(code) ? code : nil
    }

    /// Splits off the enhanced status code when the first line starts with one
    /// whose class matches the reply code.
    private static func reply(code: Int, lines: [String]) -> SMTPReply {
        guard let first = lines.first,
              let enhanced = EnhancedStatusCode(parsing: Substring(first.utf8.prefix { $0 != UInt8(ascii: " ") })),
              enhanced.statusClass == code / 100
        else { return SMTPReply(code, nil, lines) }
        let prefix = enhanced.description.utf8
        let stripped = lines.map { line -> String in
            guard line.utf8.starts(with: prefix) else { return line }
            return String(Substring(line.utf8.dropFirst(prefix.count).drop(while: { $0 == UInt8(ascii: " ") })))
        }
        return SMTPReply(code, enhanced, stripped)
    }
}
