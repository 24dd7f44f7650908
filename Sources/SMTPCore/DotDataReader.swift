import NIOCore

/// Reads the text that follows DATA: undoes dot-stuffing, finds the end of
/// data, and checks every line, streaming, so a message is never buffered
/// twice and never cut short.
///
/// The end of data is exactly `CRLF "." CRLF` (RFC 5321 4.1.1.4); the CRLF
/// of the DATA command counts as the first one. Nothing else ends it: after a
/// bare CR or LF the reader keeps reading to the true end and reports the
/// violation, so smuggled commands stay inside a refused message.
/// Once the text is refused or exceeds the size limit, output stops but
/// reading goes on to the end.
public struct DotDataReader: Sendable {
    /// How a finished DATA section turned out.
    public struct Completion: Sendable, Equatable {
        /// Octets of message content after unstuffing (all of it, even past the limit).
        public var size: Int
        public var violation: MessageTextViolation?
        public var exceedsSizeLimit: Bool
    }

    private enum State: Sendable {
        case lineStart
        case inLine
        case carriageReturn
        case dotAtLineStart
        case dotCarriageReturn
    }

    private var state: State = .lineStart
    private var lineLength = 0
    private var size = 0
    private var violation: MessageTextViolation?
    private let maxLineLength: Int
    private let maxSize: Int

    public init(limits: SMTPLimits = SMTPLimits()) {
        self.maxLineLength = limits.textLineLength
        self.maxSize = limits.maxMessageSize
    }

    /// Consumes bytes from `input`, appending unstuffed content to `output`.
    /// Returns the completion once the end-of-data line has been read; the
    /// bytes after it stay in `input` (pipelined commands).
    public mutating func consume(_ input: inout ByteBuffer, into output: inout ByteBuffer) -> Completion? {
        // The scan works on a copy held in a local: no access checks per byte.
        var scan = self
        let (consumed, finished) = input.withUnsafeReadableBytes { scan.scan($0, into: &output) }
        self = scan
        input.moveReaderIndex(forwardBy: consumed)
        guard finished else { return nil }
        return Completion(size: size, violation: violation, exceedsSizeLimit: size > maxSize)
    }

    /// Output is the input itself, in runs broken only where a stuffed dot
    /// is dropped (or the end of data begins), so most lines are copied
    /// together. Once a violation is noted the output no longer matters.
    private mutating func scan(_ bytes: UnsafeRawBufferPointer, into output: inout ByteBuffer) -> (consumed: Int, finished: Bool) {
        var runStart = 0
        var index = 0
        let count = bytes.count
        while index < count {
            switch state {
            case .inLine:
                let stop = ByteScanning.lineBreakOrNul(in: bytes, from: index)
                lineLength += stop - index
                index = stop
                guard index < count else { break }
                // The usual line end, CRLF and a next line not starting
                // with a dot, is passed in one step.
                if index + 2 < count, bytes[index] == UInt8(ascii: "\r"), bytes[index + 1] == UInt8(ascii: "\n"),
                   bytes[index + 2] != UInt8(ascii: ".") {
                    if lineLength + 2 > maxLineLength { note(.lineTooLong) }
                    lineLength = 0
                    index += 2
                    continue
                }
                lineLength += 1
                if lineLength > maxLineLength { note(.lineTooLong) }
                switch bytes[index] {
                case UInt8(ascii: "\r"): state = .carriageReturn
                case UInt8(ascii: "\n"): note(.bareLineFeed)
                default: note(.nulCharacter)
                }
                index += 1
            case .lineStart:
                if bytes[index] == UInt8(ascii: ".") {
                    emit(bytes, runStart, index, into: &output)
                    lineLength += 1
                    index += 1
                    runStart = index
                    state = .dotAtLineStart
                } else {
                    state = .inLine
                }
            case .carriageReturn, .dotCarriageReturn:
                guard bytes[index] == UInt8(ascii: "\n") else {
                    // A bare CR: the byte after it is read as part of the line.
                    note(.bareCarriageReturn)
                    state = .inLine
                    continue
                }
                if state == .dotCarriageReturn { return (index + 1, true) }
                lineLength += 1
                if lineLength > maxLineLength { note(.lineTooLong) }
                lineLength = 0
                index += 1
                state = .lineStart
            case .dotAtLineStart:
                if bytes[index] == UInt8(ascii: "\r") {
                    lineLength += 1
                    index += 1
                    state = .dotCarriageReturn
                } else {
                    state = .inLine
                }
            }
        }
        if lineLength > maxLineLength { note(.lineTooLong) }
        // After a dot and CR the CR stays unwritten: it may start the end of data.
        emit(bytes, runStart, state == .dotCarriageReturn ? count - 1 : count, into: &output)
        return (count, false)
    }

    private mutating func note(_ found: MessageTextViolation) {
        if violation == nil { violation = found }
    }

    private mutating func emit(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, into output: inout ByteBuffer) {
        guard end > start else { return }
        size += end - start
        if violation == nil && size <= maxSize { output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start..<end])) }
    }
}
