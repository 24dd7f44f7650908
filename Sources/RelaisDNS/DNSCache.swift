import NIOConcurrencyHelpers
import NIOCore

/// The records a lookup found: those of the asked type (a CNAME chain
/// followed), the smallest TTL among them, and whether the resolver
/// validated them (DNSSEC AD bit).
public struct DNSAnswer: Sendable, Equatable {
    public var records: [DNSRecordData]
    public var ttl: UInt32
    public var authenticated: Bool

    public init(records: [DNSRecordData], ttl: UInt32, authenticated: Bool) {
        self.records = records
        self.ttl = ttl
        self.authenticated = authenticated
    }
}

/// The addresses of one host, and whether DNSSEC validated them all.
public struct HostAddresses: Sendable, Equatable {
    public var addresses: [String]
    public var authenticated: Bool
}

/// Answers by name and type until their TTL runs out, shared by every
/// event loop and policy generation. NXDOMAIN and empty answers are kept
/// for the SOA's negative TTL (RFC 2308); failures are not kept. Bounded:
/// past `capacity` entries the expired ones go, then all.
public final class DNSCache: Sendable {
    private struct Entry {
        var expires: NIODeadline
        var result: Result<DNSAnswer, DNSError>
    }

    private let entries = NIOLockedValueBox([String: Entry]())
    private let capacity: Int
    /// Longest any answer is kept, whatever its TTL says.
    static let maxTTL: UInt32 = 86_400
    /// How long a negative answer without an SOA is kept.
    static let defaultNegativeTTL: UInt32 = 60

    public init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    public func lookup(_ name: String, _ type: DNSRecordType, now: NIODeadline = .now()) -> Result<DNSAnswer, DNSError>? {
        let key = Self.key(name, type)
        return entries.withLockedValue { entries in
            guard let entry = entries[key] else { return nil }
            guard entry.expires > now else {
                entries[key] = nil
                return nil
            }
            return entry.result
        }
    }

    /// Keeps `result` for `ttl` seconds (at most a day); a TTL of 0 keeps nothing.
    public func store(_ name: String, _ type: DNSRecordType, _ result: Result<DNSAnswer, DNSError>, ttl: UInt32,
               now: NIODeadline = .now()) {
        guard ttl > 0 else { return }
        let entry = Entry(expires: now + .seconds(Int64(min(ttl, Self.maxTTL))), result: result)
        let key = Self.key(name, type)
        entries.withLockedValue { entries in
            if entries.count >= capacity {
                entries = entries.filter { $0.value.expires > now }
                if entries.count >= capacity { entries.removeAll() }
            }
            entries[key] = entry
        }
    }

    private static func key(_ name: String, _ type: DNSRecordType) -> String {
        DNSMessage.canonical(name) + "/" + type.name
    }
}
