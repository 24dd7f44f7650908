/// A TLSA record (RFC 6698): which certificate or public key a server
/// must present, by usage (2 DANE-TA, 3 DANE-EE), selector (0 the whole
/// certificate, 1 its public key) and matching type (0 exact, 1 SHA-256,
/// 2 SHA-512). A plain value so it can travel with the settings of one
/// delivery.
public struct TLSARecord: Codable, Hashable, Sendable {
    public var usage: UInt8
    public var selector: UInt8
    public var matchingType: UInt8
    public var data: [UInt8]

    public init(usage: UInt8, selector: UInt8, matchingType: UInt8, data: [UInt8]) {
        self.usage = usage
        self.selector = selector
        self.matchingType = matchingType
        self.data = data
    }

    /// Usable for SMTP (RFC 7672 section 3.1): DANE-TA or DANE-EE (the
    /// PKIX usages 0 and 1 are not), with a selector and matching type
    /// OpenSSL knows.
    public var isUsableForSMTP: Bool {
        (2...3).contains(usage) && (0...1).contains(selector) && (0...2).contains(matchingType)
    }

    /// `3 1 1 <hex>`, as in a zone file.
    public var presentation: String {
        "\(usage) \(selector) \(matchingType) " + data.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }
}

/// How a client authenticates a server by DANE (RFC 7672) instead of by a
/// certificate authority: the server's TLSA records, and the recipient
/// domain a DANE-TA certificate may also be issued for (the MX host name,
/// the TLSA base domain, is the handler's server name). DANE-EE records
/// match the key alone, without name checks (RFC 7672 section 3.1.1).
public struct DANEAuthentication: Codable, Hashable, Sendable {
    public var records: [TLSARecord]
    public var nextHopDomain: String

    public init(records: [TLSARecord], nextHopDomain: String) {
        self.records = records
        self.nextHopDomain = nextHopDomain
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
