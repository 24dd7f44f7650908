import NIOCore

/// Cuts command lines out of the byte stream under the strict rules of
/// RFC 5321 2.3.8: a line ends only with CRLF. A bare CR, a bare LF or a NUL
/// makes the whole line an error instead of letting a lenient reading split it
/// differently than the peer meant (the SMTP smuggling family).
///
/// A line that grows past the limit is discarded up to its CRLF and reported
/// once, so the session stays in step with the client.
public struct CommandLineFramer: Sendable {
    /// What the next line of input is.
    public enum Frame: Sendable, Equatable {
        case line(String)
        case invalid(SMTPSyntaxError)
    }

    private let maxLength: Int
    private var discarding: SMTPSyntaxError?

    public init(maxLength: Int = SMTPLimits().commandLineLength) {
        self.maxLength = maxLength
    }

    /// Takes the next complete line out of `buffer`, or returns nil when more
    /// bytes are needed.
    public mutating func next(_ buffer: inout ByteBuffer) -> Frame? {
        let view = buffer.readableBytesView
        var index = view.startIndex
        var flaw: SMTPSyntaxError? = discarding
        while index < view.endIndex {
            let byte = view[index]
            if byte == UInt8(ascii: "\n") {
                let isCRLF = index > view.startIndex && view[index - 1] == UInt8(ascii: "\r")
                let lineLength = index - view.startIndex + 1
                let text = buffer.readString(length: lineLength - (isCRLF ? 2 : 1)) ?? ""
                buffer.moveReaderIndex(forwardBy: isCRLF ? 2 : 1)
                discarding = nil
                if !isCRLF { flaw = flaw ?? .bareLineFeed }
                if let flaw { return .invalid(flaw) }
                if lineLength > maxLength { return .invalid(.lineTooLong) }
                return .line(text)
            }
            if byte == UInt8(ascii: "\r"), index + 1 < view.endIndex, view[index + 1] != UInt8(ascii: "\n") {
                flaw = flaw ?? .bareCarriageReturn
            } else if byte == 0 {
                flaw = flaw ?? .nulCharacter
            }
            index += 1
        }
        if view.count >= maxLength {
            // Keep a trailing CR: it may pair with the LF of the next read.
            let keep = view.last == UInt8(ascii: "\r") ? 1 : 0
            buffer.moveReaderIndex(forwardBy: view.count - keep)
            discarding = flaw ?? .lineTooLong
        }
        return nil
    }
}
