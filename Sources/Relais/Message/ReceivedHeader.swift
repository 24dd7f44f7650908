import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// The `Received:` trace header (RFC 5321 4.4) Relais prepends to each
/// message it accepts, folded so no line nears the 1000-octet limit.
struct ReceivedHeader {
    var helo: String
    var clientIP: String
    var hostname: String
    /// `TLSv1.3 with cipher ...` when the session was encrypted.
    var tls: String?
    /// `SMTP`, `ESMTP`, `UTF8SMTP`, with `S` when encrypted (RFC 3848, RFC 6531).
    var protocolName: String
    var queueID: String
    /// Named only when the message has exactly one recipient, so that a copy
    /// for many people does not disclose them all.
    var recipient: String?
    var time: Int

    var text: String {
        var header = "Received: from "
        header.reserveCapacity(256)
        // Appended piece by piece: an interpolation would build each line apart first.
        header += Self.printable(helo)
        header += " (["
        header += clientIP
        header += "])\r\n"
        if let tls {
            header += "\t(using "
            header += tls
            header += ")\r\n"
        }
        header += "\tby "
        header += hostname
        header += " (Relais) with "
        header += protocolName
        header += " id "
        header += queueID
        if let recipient {
            header += "\r\n\tfor <"
            header += recipient
            header += ">"
        }
        header += "; "
        header += Self.rfc5322Date(time)
        header += "\r\n"
        return header
    }

    /// Keeps visible ASCII, replacing anything else so a client's HELO cannot
    /// inject line breaks or 8-bit text into the header.
    private static func printable(_ text: String) -> String {
        func allowed(_ value: UInt32) -> Bool { (33...126).contains(value) && value != 0x28 && value != 0x29 }  // not ( or )
        // Most names need no change: no scalar to map, no copy.
        if text.utf8.count <= 255, text.utf8.allSatisfy({ allowed(UInt32($0)) }) { return text }
        return String(String.UnicodeScalarView(text.unicodeScalars.prefix(255).map { allowed($0.value) ? $0 : "?" }))
    }

    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    /// The last second formatted: messages accepted within one second share it.
    private static let lastDate = NIOLockedValueBox((time: Int.min, text: ""))

    /// `Sun, 29 Nov 2026 13:21:24 +0000` (RFC 5322 3.3), in UTC.
    static func rfc5322Date(_ time: Int) -> String {
        if let known = lastDate.withLockedValue({ $0.time == time ? $0.text : nil }) { return known }
        var seconds = time_t(time)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let text = "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) +0000"
        lastDate.withLockedValue { $0 = (time, text) }
        return text
    }
}
