/// Finds the bytes that matter in message text eight at a time: message
/// lines are long runs of ordinary bytes, and looking at each byte on its
/// own was most of the relay's time for large messages.
enum ByteScanning {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highBits: UInt64 = 0x8080_8080_8080_8080

    /// Whether any of the eight bytes in `word` is below `limit` (≤ 128).
    @inline(__always)
    private static func hasByte(in word: UInt64, below limit: UInt8) -> Bool {
        (word &- ones &* UInt64(limit)) & ~word & highBits != 0
    }

    /// The index of the first CR, LF or NUL at or after `start`, or `bytes.count`.
    @inline(__always)
    static func lineBreakOrNul(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        var index = start
        let count = bytes.count
        while true {
            // No byte below 14 (CR) in a word: none of the three is in it.
            while index + 8 <= count, !hasByte(in: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self), below: 14) {
                index += 8
            }
            let end = min(index + 8, count)
            while index < end {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") || byte == 0 { return index }
                index += 1
            }
            if index == count { return count }
        }
    }

    /// The index of the first LF at or after `start`, or `bytes.count`.
    @inline(__always)
    static func lineFeed(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        var index = start
        let count = bytes.count
        let lineFeeds = ones &* UInt64(UInt8(ascii: "\n"))
        while true {
            // A byte equal to LF is a zero byte after the exclusive or.
            while index + 8 <= count,
                  !hasByte(in: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) ^ lineFeeds, below: 1) {
                index += 8
            }
            let end = min(index + 8, count)
            while index < end {
                if bytes[index] == UInt8(ascii: "\n") { return index }
                index += 1
            }
            if index == count { return count }
        }
    }
}
