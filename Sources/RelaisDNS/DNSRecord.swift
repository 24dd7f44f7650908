/// The record types hooks and delivery ask for (RFC 1035, 3596, 6698).
public enum DNSRecordType: UInt16, Sendable, CaseIterable {
    case a = 1
    case ns = 2
    case cname = 5
    case soa = 6
    case ptr = 12
    case mx = 15
    case txt = 16
    case aaaa = 28
    case tlsa = 52

    /// `A`, `MX`, ... as users write them.
    public init?(name: String) {
        guard let type = Self.allCases.first(where: { $0.name == name.uppercased() }) else { return nil }
        self = type
    }

    public var name: String {
        switch self {
        case .a: "A"
        case .ns: "NS"
        case .cname: "CNAME"
        case .soa: "SOA"
        case .ptr: "PTR"
        case .mx: "MX"
        case .txt: "TXT"
        case .aaaa: "AAAA"
        case .tlsa: "TLSA"
        }
    }
}

/// One resource record of an answer, decoded.
public struct DNSRecord: Sendable, Equatable {
    public var name: String
    public var ttl: UInt32
    public var data: DNSRecordData

    public init(name: String, ttl: UInt32, data: DNSRecordData) {
        self.name = name
        self.ttl = ttl
        self.data = data
    }
}

/// The data of a record, by type. Names are lower case without the final dot.
public enum DNSRecordData: Sendable, Equatable {
    case a(String)
    case aaaa(String)
    case mx(preference: UInt16, host: String)
    /// The character-strings of one TXT record, in order.
    case txt([[UInt8]])
    case ptr(String)
    case cname(String)
    case ns(String)
    case tlsa(usage: UInt8, selector: UInt8, matchingType: UInt8, data: [UInt8])
    /// Only the negative-caching TTL (RFC 2308) is kept.
    case soa(minimum: UInt32)
    case other(type: UInt16)

    public var type: UInt16 {
        switch self {
        case .a: DNSRecordType.a.rawValue
        case .aaaa: DNSRecordType.aaaa.rawValue
        case .mx: DNSRecordType.mx.rawValue
        case .txt: DNSRecordType.txt.rawValue
        case .ptr: DNSRecordType.ptr.rawValue
        case .cname: DNSRecordType.cname.rawValue
        case .ns: DNSRecordType.ns.rawValue
        case .tlsa: DNSRecordType.tlsa.rawValue
        case .soa: DNSRecordType.soa.rawValue
        case .other(let type): type
        }
    }
}

/// Why a lookup has no answer; the description is what Lua sees.
public enum DNSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The name does not exist (RCODE 3).
    case nxdomain
    /// The server failed (RCODE 2) or refused (RCODE 5), or another RCODE.
    case servfail
    case timeout
    /// The answer could not be decoded, or did not match the question.
    case malformed(String)
    /// The name is not a valid domain name.
    case badName(String)

    public var description: String {
        switch self {
        case .nxdomain: "NXDOMAIN"
        case .servfail: "SERVFAIL"
        case .timeout: "timeout"
        case .malformed(let reason): "malformed answer: \(reason)"
        case .badName(let name): "bad domain name \(name.debugDescription)"
        }
    }
}
