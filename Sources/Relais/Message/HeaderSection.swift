import NIOCore

/// Read-only questions about the header section of a message (RFC 5322 2.2):
/// the lines before the first empty line.
enum HeaderSection {
    /// How many header fields named `name` (case-insensitive) the message
    /// has, looking from `offset` on.
    static func count(of name: String, in message: ByteBuffer, from offset: Int) -> Int {
        let prefix = Array((name + ":").lowercased().utf8)
        var count = 0
        forEachLine(of: message, from: offset) { line in
            if line.count >= prefix.count, zip(line.prefix(prefix.count), prefix).allSatisfy({ lowercase($0) == $1 }) {
                count += 1
            }
            return true
        }
        return count
    }

    /// The first header-section line (1-based, from `offset`) that is
    /// neither a field (`name:`, the name of printable characters but the
    /// colon, RFC 5322 2.2) nor a continuation (starting with a space or a
    /// tab); nil when every line is one of them.
    ///
    /// ```
    /// field-name = 1*ftext ; ftext = %d33-57 / %d59-126
    /// ```
    static func firstMalformedLine(in message: ByteBuffer, from offset: Int) -> Int? {
        var number = 0
        var malformed: Int?
        forEachLine(of: message, from: offset) { line in
            number += 1
            if let first = line.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { return number > 1 || stop(&malformed, number) }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
                  line[..<colon].allSatisfy({ (33...126).contains($0) })
            else { return stop(&malformed, number) }
            return true
        }
        return malformed
    }

    private static func stop(_ malformed: inout Int?, _ number: Int) -> Bool {
        malformed = number
        return false
    }

    /// Calls `body` with each line of the header section (without CRLF)
    /// until it returns false or the empty line ends the section.
    private static func forEachLine(of message: ByteBuffer, from offset: Int, _ body: (ByteBufferView.SubSequence) -> Bool) {
        let view = message.readableBytesView
        var lineStart = view.startIndex + offset
        while lineStart < view.endIndex {
            let lineEnd = view[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? view.endIndex
            var line = view[lineStart..<lineEnd]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if line.isEmpty || !body(line) { return }
            lineStart = lineEnd + 1
        }
    }

    private static func lowercase(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
    }
}
