import Foundation
import NIOConcurrencyHelpers

/// Generates queue ids: the time in microseconds and a counter, base 36, so
/// ids sort by arrival, are unique within the process and across restarts,
/// and are safe in file names and log lines.
enum QueueID {
    private static let counter = NIOLockedValueBox<UInt32>(0)

    static func make(now: Date = Date()) -> String {
        let micros = UInt64(now.timeIntervalSince1970 * 1_000_000)
        let sequence = counter.withLockedValue { value -> UInt32 in
            value = (value + 1) % (36 * 36 * 36)
            return value
        }
        let time = String(micros, radix: 36, uppercase: true)
        let suffix = String(sequence, radix: 36, uppercase: true)
        return time + String(repeating: "0", count: 3 - suffix.count) + suffix
    }

    /// True for strings that `make` could have produced (guards file paths).
    static func isValid(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 32 && text.unicodeScalars.allSatisfy {
            ("0"..."9").contains($0) || ("A"..."Z").contains($0)
        }
    }
}
