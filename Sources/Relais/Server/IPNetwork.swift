import NIOCore

/// An IPv4 or IPv6 network in CIDR notation (`192.0.2.0/24`, `::1/128`), used
/// for `relay_networks` and every other "is this client one of ours" question.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    /// Network address bytes: 4 for IPv4, 16 for IPv6.
    public let address: [UInt8]
    public let prefixLength: Int
    /// The network as written in the configuration.
    public let text: String

    public init?(cidr text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let bytes = IPNetwork.addressBytes(String(first)) else { return nil }
        let maxPrefix = bytes.count * 8
        let prefix: Int
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), (0...maxPrefix).contains(parsed) else { return nil }
            prefix = parsed
        } else {
            prefix = maxPrefix
        }
        self.address = IPNetwork.masked(bytes, prefix)
        self.prefixLength = prefix
        self.text = text
    }

    /// 127.0.0.0/8 and ::1/128.
    public static let loopback = [IPNetwork(cidr: "127.0.0.0/8"), IPNetwork(cidr: "::1/128")].compactMap { $0 }

    /// True when `ip` (textual) lies in this network. An IPv4-mapped IPv6
    /// address (`::ffff:192.0.2.1`) matches IPv4 networks.
    public func contains(_ ip: String) -> Bool {
        guard var bytes = IPNetwork.addressBytes(ip) else { return false }
        if bytes.count == 16, address.count == 4, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
            bytes = Array(bytes[12...])
        }
        guard bytes.count == address.count else { return false }
        return IPNetwork.masked(bytes, prefixLength) == address
    }

    public var description: String { text }

    private static func masked(_ bytes: [UInt8], _ prefix: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bitsHere = max(0, min(8, prefix - index * 8))
            return bitsHere == 8 ? byte : byte & ~(UInt8.max >> bitsHere)
        }
    }

    /// The address bytes of a textual IPv4 or IPv6 address.
    static func addressBytes(_ text: String) -> [UInt8]? {
        if text.contains(":") {
            guard let address = try? SocketAddress(ipAddress: text, port: 0),
                  case .v6(let v6) = address else { return nil }
            return withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        }
        guard let address = try? SocketAddress(ipAddress: text, port: 0),
              case .v4(let v4) = address else { return nil }
        return withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
    }
}

extension Array where Element == IPNetwork {
    public func contains(ip: String) -> Bool {
        contains { $0.contains(ip) }
    }
}
