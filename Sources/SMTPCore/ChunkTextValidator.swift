import NIOCore

/// Checks BDAT chunks (RFC 3030), which arrive without dot-stuffing, against
/// the same line rules as DATA: CRLF line ends only, no NUL, no line over
/// 1000 octets. It keeps its state across chunks, since a CRLF may be split
/// between two of them.
public struct ChunkTextValidator: Sendable {
    private var pendingCarriageReturn = false
    private var lineLength = 0
    private let maxLineLength: Int
    public private(set) var violation: MessageTextViolation?

    public init(limits: SMTPLimits = SMTPLimits()) {
        self.maxLineLength = limits.textLineLength
    }

    public mutating func check(_ chunk: ByteBuffer) {
        guard violation == nil else { return }
        for byte in chunk.readableBytesView {
            lineLength += 1
            if lineLength > maxLineLength { return note(.lineTooLong) }
            if pendingCarriageReturn {
                pendingCarriageReturn = false
                if byte == UInt8(ascii: "\n") {
                    lineLength = 0
                    continue
                }
                return note(.bareCarriageReturn)
            }
            switch byte {
            case UInt8(ascii: "\r"): pendingCarriageReturn = true
            case UInt8(ascii: "\n"): return note(.bareLineFeed)
            case 0: return note(.nulCharacter)
            default: break
            }
        }
    }

    /// Called after the LAST chunk: text must end at a line end.
    public mutating func finish() {
        if violation == nil && pendingCarriageReturn { note(.bareCarriageReturn) }
    }

    private mutating func note(_ found: MessageTextViolation) {
        violation = found
    }
}
