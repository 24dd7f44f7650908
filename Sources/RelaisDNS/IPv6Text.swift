/// IPv6 addresses as text (RFC 5952: lower case, the longest run of zero
/// groups shortened to `::`), and the reversed names of addresses for PTR
/// and DNSBL lookups.
public enum IPv6Text {
    public static func format(_ bytes: [UInt8]) -> String {
        guard bytes.count == 16 else { return "" }
        let groups = stride(from: 0, to: 16, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
        var best = (start: -1, length: 0)
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else { index += 1; continue }
            let start = index
            while index < 8 && groups[index] == 0 { index += 1 }
            if index - start > best.length && index - start > 1 { best = (start, index - start) }
        }
        let hex = groups.map { String($0, radix: 16) }
        guard best.start >= 0 else { return hex.joined(separator: ":") }
        let head = hex[..<best.start].joined(separator: ":")
        let tail = hex[(best.start + best.length)...].joined(separator: ":")
        return head + "::" + tail
    }
}

/// The name under which an address is looked up in reverse: `4.3.2.1` for
/// 1.2.3.4, 32 nibbles for IPv6 (RFC 3596 2.5); append `in-addr.arpa`,
/// `ip6.arpa` or a DNSBL zone.
public enum ReverseName {
    public static func of(_ address: String) -> String? {
        if let octets = ipv4(address) { return octets.reversed().map(String.init).joined(separator: ".") }
        guard let bytes = ipv6(address) else { return nil }
        let nibbles = bytes.flatMap { [$0 >> 4, $0 & 0xF] }
        return nibbles.reversed().map { String($0, radix: 16) }.joined(separator: ".")
    }

    /// `in-addr.arpa` or `ip6.arpa` name for PTR lookups.
    public static func pointer(_ address: String) -> String? {
        guard let reversed = of(address) else { return nil }
        return reversed + (ipv4(address) != nil ? ".in-addr.arpa" : ".ip6.arpa")
    }

    static func ipv4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        let octets = parts.compactMap { part -> UInt8? in
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCIIDigit) else { return nil }
            return UInt8(part)
        }
        return octets.count == 4 ? octets : nil
    }

    static func ipv6(_ text: String) -> [UInt8]? {
        let halves = splitOnDoubleColon(Array(text.utf8)).map { String(decoding: $0, as: UTF8.self) }
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if index == pieces.count - 1, piece.contains("."), let v4 = ipv4(String(piece)) {
                    result += [UInt16(v4[0]) << 8 | UInt16(v4[1]), UInt16(v4[2]) << 8 | UInt16(v4[3])]
                } else {
                    guard !piece.isEmpty, piece.count <= 4, let value = UInt16(piece, radix: 16) else { return nil }
                    result.append(value)
                }
            }
            return result
        }
        guard let head = groups(halves[0]) else { return nil }
        var all = head
        if halves.count == 2 {
            guard let tail = groups(halves[1]), head.count + tail.count < 8 else { return nil }
            all += Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        }
        guard all.count == 8 else { return nil }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }
}

/// `a::b` into `a`, `b`; more than one `::` gives three or more parts.
private func splitOnDoubleColon(_ bytes: [UInt8]) -> [[UInt8]] {
    var parts: [[UInt8]] = [[]]
    var index = 0
    while index < bytes.count {
        if bytes[index] == UInt8(ascii: ":"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: ":") {
            parts.append([])
            index += 2
        } else {
            parts[parts.count - 1].append(bytes[index])
            index += 1
        }
    }
    return parts
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
