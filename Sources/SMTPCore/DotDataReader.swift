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
        var completion: Completion?
        let consumed = input.withUnsafeReadableBytes { bytes -> Int in
            var runStart = 0
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                lineLength += 1
                if lineLength > maxLineLength { note(.lineTooLong) }
                switch state {
                case .lineStart, .inLine:
                    if byte == UInt8(ascii: "\r") {
                        emit(bytes, runStart, index, into: &output)
                        state = .carriageReturn
                    } else if byte == UInt8(ascii: "\n") {
                        note(.bareLineFeed)
                        state = .inLine
                    } else if byte == UInt8(ascii: ".") && state == .lineStart {
                        runStart = index + 1
                        state = .dotAtLineStart
                    } else {
                        if byte == 0 { note(.nulCharacter) }
                        if state == .lineStart { runStart = index }
                        state = .inLine
                    }
                case .carriageReturn:
                    if byte == UInt8(ascii: "\n") {
                        emitLiteral("\r\n", into: &output)
                        startLine(&runStart, index + 1)
                    } else {
                        note(.bareCarriageReturn)
                        state = .inLine
                        runStart = index
                        lineLength -= 1
                        continue
                    }
                case .dotAtLineStart:
                    if byte == UInt8(ascii: "\r") {
                        state = .dotCarriageReturn
                    } else {
                        if byte == UInt8(ascii: "\n") { note(.bareLineFeed) }
                        if byte == 0 { note(.nulCharacter) }
                        runStart = index
                        state = .inLine
                    }
                case .dotCarriageReturn:
                    if byte == UInt8(ascii: "\n") {
                        completion = Completion(size: size, violation: violation, exceedsSizeLimit: size > maxSize)
                        return index + 1
                    }
                    note(.bareCarriageReturn)
                    state = .inLine
                    runStart = index
                    lineLength -= 1
                    continue
                }
                index += 1
            }
            if state == .inLine { emit(bytes, runStart, bytes.count, into: &output) }
            return bytes.count
        }
        input.moveReaderIndex(forwardBy: consumed)
        return completion
    }

    private mutating func startLine(_ runStart: inout Int, _ index: Int) {
        state = .lineStart
        lineLength = 0
        runStart = index
    }

    private mutating func note(_ found: MessageTextViolation) {
        if violation == nil { violation = found }
    }

    private var isWriting: Bool { violation == nil && size <= maxSize }

    private mutating func emit(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, into output: inout ByteBuffer) {
        guard end > start else { return }
        size += end - start
        if isWriting { output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start..<end])) }
    }

    private mutating func emitLiteral(_ text: StaticString, into output: inout ByteBuffer) {
        size += text.utf8CodeUnitCount
        if isWriting { output.writeStaticString(text) }
    }
}
