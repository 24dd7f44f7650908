/// The DNS wire format (RFC 1035 section 4), pure: a query to send, and
/// the decoded response. Names are compared and returned in lower case.
public struct DNSMessage: Sendable, Equatable {
    public var id: UInt16
    /// RCODE: 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ...
    public var responseCode: UInt8
    /// TC: the answer did not fit in UDP; ask again over TCP.
    public var truncated: Bool
    /// AD: the resolver validated the answer with DNSSEC (RFC 4035).
    public var authenticated: Bool
    public var questionName: String
    public var questionType: UInt16
    public var answers: [DNSRecord]
    public var authority: [DNSRecord]

    /// Largest UDP answer we ask for (EDNS0, RFC 6891; the 2020 DNS flag day size).
    public static let udpPayloadSize: UInt16 = 1232

    /// A recursive query for `name` and `type` with EDNS0, asking for the AD bit (RFC 6840 5.7).
    public static func query(id: UInt16, name: String, type: DNSRecordType) throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32 + name.utf8.count)
        append16(id, to: &bytes)
        append16(0x0120, to: &bytes)  // RD, AD
        append16(1, to: &bytes)
        append16(0, to: &bytes)
        append16(0, to: &bytes)
        append16(1, to: &bytes)
        try appendName(name, to: &bytes)
        append16(type.rawValue, to: &bytes)
        append16(1, to: &bytes)  // IN
        bytes.append(0)  // OPT: root name
        append16(41, to: &bytes)
        append16(udpPayloadSize, to: &bytes)
        bytes += [0, 0, 0, 0, 0, 0]  // extended RCODE, version, flags, RDLENGTH
        return bytes
    }

    /// Decodes a response; throws `DNSError.malformed` on anything that does not parse.
    public init(parsing bytes: [UInt8]) throws {
        var reader = Reader(bytes: bytes)
        id = try reader.u16()
        let flags = try reader.u16()
        guard flags & 0x8000 != 0 else { throw DNSError.malformed("not a response") }
        truncated = flags & 0x0200 != 0
        authenticated = flags & 0x0020 != 0
        responseCode = UInt8(flags & 0x000F)
        let questions = try reader.u16()
        let answerCount = try reader.u16()
        let authorityCount = try reader.u16()
        _ = try reader.u16()
        guard questions == 1 else { throw DNSError.malformed("\(questions) questions") }
        questionName = try reader.name()
        questionType = try reader.u16()
        _ = try reader.u16()
        answers = try (0..<answerCount).map { _ in try reader.record() }
        authority = truncated ? [] : try (0..<authorityCount).map { _ in try reader.record() }
    }

    private static func append16(_ value: UInt16, to bytes: inout [UInt8]) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(value & 0xFF))
    }

    /// Encodes `name` as labels; a final dot is optional.
    static func appendName(_ name: String, to bytes: inout [UInt8]) throws {
        let trimmed = name.hasSuffix(".") ? String(name.dropLast()) : name
        guard !trimmed.isEmpty, trimmed.utf8.count <= 253 else { throw DNSError.badName(name) }
        for label in trimmed.split(separator: ".", omittingEmptySubsequences: false) {
            let utf8 = Array(label.utf8)
            guard !utf8.isEmpty, utf8.count <= 63, utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw DNSError.badName(name)
            }
            bytes.append(UInt8(utf8.count))
            bytes += utf8
        }
        bytes.append(0)
    }

    /// Normalizes a name for comparison: lower case, no final dot.
    public static func canonical(_ name: String) -> String {
        (name.hasSuffix(".") ? String(name.dropLast()) : name).lowercased()
    }
}

/// Reads a message front to back; names may point backwards (compression).
private struct Reader {
    let bytes: [UInt8]
    var offset = 0

    mutating func u8() throws -> UInt8 {
        guard offset < bytes.count else { throw DNSError.malformed("truncated") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() throws -> UInt16 {
        UInt16(try u8()) << 8 | UInt16(try u8())
    }

    mutating func u32() throws -> UInt32 {
        UInt32(try u16()) << 16 | UInt32(try u16())
    }

    mutating func take(_ count: Int) throws -> [UInt8] {
        guard count >= 0, offset + count <= bytes.count else { throw DNSError.malformed("truncated") }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// A possibly compressed name at the current offset, which moves past it.
    mutating func name() throws -> String {
        var labels: [String] = []
        var position = offset
        var jumped = false
        var jumps = 0
        var length = 0
        while true {
            guard position < bytes.count else { throw DNSError.malformed("truncated name") }
            let size = Int(bytes[position])
            if size & 0xC0 == 0xC0 {
                guard position + 1 < bytes.count, jumps < 32 else { throw DNSError.malformed("bad name pointer") }
                let target = (size & 0x3F) << 8 | Int(bytes[position + 1])
                if !jumped { offset = position + 2 }
                jumped = true
                jumps += 1
                position = target
                continue
            }
            guard size & 0xC0 == 0 else { throw DNSError.malformed("bad label") }
            if size == 0 {
                if !jumped { offset = position + 1 }
                break
            }
            guard position + 1 + size <= bytes.count else { throw DNSError.malformed("truncated label") }
            length += size + 1
            guard length <= 255 else { throw DNSError.malformed("name too long") }
            labels.append(String(decoding: bytes[(position + 1)...(position + size)], as: UTF8.self))
            position += 1 + size
        }
        return labels.joined(separator: ".").lowercased()
    }

    mutating func record() throws -> DNSRecord {
        let name = try name()
        let type = try u16()
        _ = try u16()
        let ttl = try u32()
        let length = Int(try u16())
        let end = offset + length
        guard end <= bytes.count else { throw DNSError.malformed("truncated record") }
        let data: DNSRecordData
        switch DNSRecordType(rawValue: type) {
        case .a?:
            guard length == 4 else { throw DNSError.malformed("A of \(length) bytes") }
            data = .a(try take(4).map(String.init).joined(separator: "."))
        case .aaaa?:
            guard length == 16 else { throw DNSError.malformed("AAAA of \(length) bytes") }
            data = .aaaa(IPv6Text.format(try take(16)))
        case .mx?:
            data = .mx(preference: try u16(), host: try self.name())
        case .txt?:
            var strings: [[UInt8]] = []
            while offset < end {
                let size = Int(try u8())
                strings.append(try take(size))
            }
            data = .txt(strings)
        case .ptr?:
            data = .ptr(try self.name())
        case .cname?:
            data = .cname(try self.name())
        case .ns?:
            data = .ns(try self.name())
        case .tlsa?:
            guard length >= 3 else { throw DNSError.malformed("TLSA of \(length) bytes") }
            data = .tlsa(usage: try u8(), selector: try u8(), matchingType: try u8(), data: try take(length - 3))
        case .soa?:
            _ = try self.name()
            _ = try self.name()
            _ = try take(16)
            data = .soa(minimum: try u32())
        case nil:
            data = .other(type: type)
        }
        guard offset <= end else { throw DNSError.malformed("record longer than its length") }
        offset = end
        return DNSRecord(name: name, ttl: ttl, data: data)
    }
}
