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
            guard let last = bytes.last else { return }
            var runStart = 0
            var lineStart = atLineStart ? 0 : ByteScanning.lineFeed(in: bytes, from: 0) + 1
            while lineStart < bytes.count {
                if bytes[lineStart] == UInt8(ascii: ".") {
                    output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<lineStart]))
                    output.writeStaticString(".")
                    runStart = lineStart
                }
                lineStart = ByteScanning.lineFeed(in: bytes, from: lineStart) + 1
            }
            output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<bytes.count]))
            atLineStart = last == UInt8(ascii: "\n")
            lastByte = last
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
