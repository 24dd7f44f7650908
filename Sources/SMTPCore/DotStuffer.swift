import NIOCore

/// Prepares message text for DATA on the client side (RFC 5321 4.5.2): a dot
/// at the start of a line is doubled, the text is made to end with CRLF, and
/// the end-of-data line `.` CRLF is appended. Works on chunks, remembering
/// whether the previous chunk ended a line.
public struct DotStuffer: Sendable {
    private var atLineStart = true
    private var lastByte: UInt8?

    public init() {}

    public mutating func stuff(_ chunk: ByteBuffer, into output: inout ByteBuffer) {
        chunk.withUnsafeReadableBytes { bytes in
            var runStart = 0
            for index in 0..<bytes.count {
                let byte = bytes[index]
                if atLineStart && byte == UInt8(ascii: ".") {
                    output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
                    output.writeStaticString(".")
                    runStart = index
                }
                atLineStart = byte == UInt8(ascii: "\n")
            }
            output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<bytes.count]))
            if let last = bytes.last { lastByte = last }
        }
    }

    /// Writes the end-of-data line, preceded by a CRLF when the text did not
    /// end with one.
    public mutating func finish(into output: inout ByteBuffer) {
        if lastByte != nil && lastByte != UInt8(ascii: "\n") { output.writeStaticString("\r\n") }
        output.writeStaticString(".\r\n")
        atLineStart = true
        lastByte = nil
    }
}
