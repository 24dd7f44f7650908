/// DKIM's canonicalization algorithms (RFC 6376 section 3.4): how header
/// fields and the body are normalised before hashing, so that harmless
/// changes in transit (re-folding, trailing white space) keep a signature valid.
public enum DKIMCanonicalization: String, Sendable, Hashable, Codable {
    case simple
    case relaxed

    private static let space: UInt8 = 32, tab: UInt8 = 9, cr: UInt8 = 13, lf: UInt8 = 10

    /// One header field (`raw`: name, colon, value, folded lines with CRLF).
    /// Relaxed: lower-case name, unfolded, runs of WSP as one SP, no WSP
    /// around the colon or at the end; then CRLF.
    func header(_ raw: [UInt8]) -> [UInt8] {
        guard self == .relaxed else { return raw }
        guard let colon = raw.firstIndex(of: UInt8(ascii: ":")) else { return raw }
        var name = Array(raw[..<colon])
        while let last = name.last, last == Self.space || last == Self.tab { name.removeLast() }
        var value: [UInt8] = []
        var pendingSpace = false
        for byte in raw[(colon + 1)...] where byte != Self.cr && byte != Self.lf {
            if byte == Self.space || byte == Self.tab {
                pendingSpace = !value.isEmpty
            } else {
                if pendingSpace { value.append(Self.space) }
                pendingSpace = false
                value.append(byte)
            }
        }
        let lowered = name.map { (65...90).contains($0) ? $0 + 32 : $0 }
        return lowered + [UInt8(ascii: ":")] + value + [Self.cr, Self.lf]
    }

    /// The body (after the empty line that ends the header section).
    /// Simple: trailing empty lines dropped, one CRLF at the end (an empty
    /// body is CRLF). Relaxed: also WSP runs as one SP and no WSP at line
    /// ends; an empty body stays empty.
    func body(_ bytes: some Collection<UInt8>) -> [UInt8] {
        var lines: [[UInt8]] = []
        var line: [UInt8] = []
        var previous: UInt8 = 0
        for byte in bytes {
            if byte == Self.lf && previous == Self.cr {
                line.removeLast()
                lines.append(line)
                line = []
            } else {
                line.append(byte)
            }
            previous = byte
        }
        if !line.isEmpty { lines.append(line) }
        if self == .relaxed { lines = lines.map(Self.relaxedLine) }
        while let last = lines.last, last.isEmpty { lines.removeLast() }
        if lines.isEmpty { return self == .simple ? [Self.cr, Self.lf] : [] }
        return lines.flatMap { $0 + [Self.cr, Self.lf] }
    }

    private static func relaxedLine(_ line: [UInt8]) -> [UInt8] {
        var result: [UInt8] = []
        var pendingSpace = false
        for byte in line {
            if byte == space || byte == tab {
                pendingSpace = true
            } else {
                if pendingSpace { result.append(space) }
                pendingSpace = false
                result.append(byte)
            }
        }
        return result
    }
}
