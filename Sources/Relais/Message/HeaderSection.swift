import NIOCore

/// Read-only questions about the header section of a message (RFC 5322 2.2):
/// the lines before the first empty line.
enum HeaderSection {
    /// How many header fields named `name` (case-insensitive) the message
    /// has, looking from `offset` on.
    static func count(of name: String, in message: ByteBuffer, from offset: Int) -> Int {
        let prefix = Array((name + ":").lowercased().utf8)
        var count = 0
        let view = message.readableBytesView
        var lineStart = view.startIndex + offset
        while lineStart < view.endIndex {
            let lineEnd = view[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? view.endIndex
            let line = view[lineStart..<lineEnd]
            if line.isEmpty || line == [UInt8(ascii: "\r")] { break }
            if line.count >= prefix.count,
               zip(line.prefix(prefix.count), prefix).allSatisfy({ lowercase($0) == $1 }) {
                count += 1
            }
            lineStart = lineEnd + 1
        }
        return count
    }

    private static func lowercase(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
    }
}
