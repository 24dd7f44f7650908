#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds the bytes that matter in message text many at a time: message
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
        // No byte below 14 (CR) in a word: none of the three is in it.
        firstIndex(in: bytes, from: start, wordMayHold: { hasByte(in: $0, below: 14) },
                   isMatch: { $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") || $0 == 0 })
    }

    /// The index of the first dot at or after `start`, or `bytes.count`:
    /// the C library's `memchr`, which looks at a vector register's width
    /// at a time.
    @inline(__always)
    static func dot(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        guard start < bytes.count, let base = bytes.baseAddress,
              let found = memchr(base + start, Int32(UInt8(ascii: ".")), bytes.count - start) else { return bytes.count }
        return base.distance(to: UnsafeRawPointer(found))
    }

    /// Skips the words `wordMayHold` rules out, then looks at the bytes of
    /// the next word one by one.
    @inline(__always)
    private static func firstIndex(in bytes: UnsafeRawBufferPointer, from start: Int, wordMayHold: (UInt64) -> Bool,
                                   isMatch: (UInt8) -> Bool) -> Int {
        var index = start
        let count = bytes.count
        while true {
            while index + 8 <= count, !wordMayHold(bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)) {
                index += 8
            }
            let end = min(index + 8, count)
            while index < end {
                if isMatch(bytes[index]) { return index }
                index += 1
            }
            if index == count { return count }
        }
    }
}
