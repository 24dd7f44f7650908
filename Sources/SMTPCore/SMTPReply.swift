import NIOCore

/// A complete SMTP reply: a three-digit code, an optional enhanced status code
/// and one or more text lines. Both the server (which writes replies) and the
/// client (which reads them) use this one type.
public struct SMTPReply: Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    public var enhanced: EnhancedStatusCode?
    public var lines: [String]

    public init(_ code: Int, _ enhanced: EnhancedStatusCode? = nil, _ lines: [String]) {
        self.code = code
        self.enhanced = enhanced
        self.lines = lines.isEmpty ? [""] : lines
    }

    public init(_ code: Int, _ enhanced: EnhancedStatusCode?, _ text: String) {
        self.init(code, enhanced, [text])
    }

    public var isPositive: Bool { code >= 200 && code < 400 }
    public var isTransientFailure: Bool { code >= 400 && code < 500 }

    /// The text of all lines joined by spaces, with the enhanced code in front.
    public var text: String {
        let joined = lines.joined(separator: " ")
        guard let enhanced else { return joined }
        return "\(enhanced) \(joined)"
    }

    public var description: String { "\(code) \(text)" }
}

// MARK: - Encoding

extension SMTPReply {
    /// Writes the reply as `code-text` continuation lines ending with `code text`.
    /// Each line carries the enhanced code (RFC 2034 section 4).
    public func write(into buffer: inout ByteBuffer) {
        for (index, line) in lines.enumerated() {
            buffer.writeString(String(code))
            buffer.writeStaticString(index == lines.count - 1 ? " " : "-")
            if let enhanced {
                buffer.writeString(enhanced.description)
                if !line.isEmpty { buffer.writeStaticString(" ") }
            }
            buffer.writeString(line)
            buffer.writeStaticString("\r\n")
        }
    }
}
