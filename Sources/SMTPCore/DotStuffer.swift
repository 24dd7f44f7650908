import NIOCore

/// Prepares message text for DATA on the client side (RFC 5321 4.5.2): a dot
/// at the start of a line is doubled, the text is made to end with CRLF, and
/// the end-of-data line `.` CRLF is appended. The text is never copied: it
/// comes out as pieces of the chunks given, to be written one after the
/// other, cut where a dot is doubled (the piece before ends with that dot
/// and the next begins with it). Works on chunks, remembering whether the
/// previous chunk ended a line.
public struct DotStuffer: Sendable {
    private var atLineStart = true
    private var lastByte: UInt8?

    public init() {}

    /// Appends the pieces that send `chunk` to `pieces`.
    public mutating func stuff(_ chunk: ByteBuffer, into pieces: inout [ByteBuffer]) {
        chunk.withUnsafeReadableBytes { bytes in
            guard let last = bytes.last else { return }
            var runStart = 0
            // Dots are rarer than line ends (none in base64): look for them,
            // and double those that begin a line.
            var dot = ByteScanning.dot(in: bytes, from: 0)
            while dot < bytes.count {
                if dot == 0 ? atLineStart : bytes[dot - 1] == UInt8(ascii: "\n") {
                    pieces.append(Self.piece(of: chunk, runStart..<dot + 1))
                    runStart = dot
                }
                dot = ByteScanning.dot(in: bytes, from: dot + 1)
            }
            pieces.append(Self.piece(of: chunk, runStart..<bytes.count))
            atLineStart = last == UInt8(ascii: "\n")
            lastByte = last
        }
    }

    /// Appends the end-of-data line, preceded by a CRLF when the text did
    /// not end with one.
    public mutating func finish(into pieces: inout [ByteBuffer]) {
        let unfinishedLine = lastByte != nil && lastByte != UInt8(ascii: "\n")
        pieces.append(unfinishedLine ? Self.lineEndAndEndOfData : Self.endOfData)
        atLineStart = true
        lastByte = nil
    }

    // Shared by every message: appending them allocates nothing.
    private static let endOfData = ByteBuffer(staticString: ".\r\n")
    private static let lineEndAndEndOfData = ByteBuffer(staticString: "\r\n.\r\n")

    /// The bytes at `range` of the chunk's readable bytes, shared with it.
    private static func piece(of chunk: ByteBuffer, _ range: Range<Int>) -> ByteBuffer {
        // The scan gives ranges inside the readable bytes only.
        chunk.getSlice(at: chunk.readerIndex + range.lowerBound, length: range.count) ?? ByteBuffer()
    }
}
