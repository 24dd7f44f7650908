import RelaisTLS

/// `relais.mx{ port, tls, dane, mta_sts, helo, dkim, max_connections, timeout, connect_timeout }`:
/// deliver each recipient to its domain's MX hosts (RFC 5321 section 5.1)
/// instead of a smarthost. Stored with the queued message, as any target.
public struct MXTarget: Codable, Hashable, Sendable, CustomStringConvertible {
    public var port = 25
    /// `opportunistic` (STARTTLS when offered, unverified; the default, as
    /// on the public MX network), `starttls` (required and verified against
    /// the MX host name) or `none`.
    public var tls = UpstreamTLS.opportunistic
    public var heloName: String?
    public var dkim: [String]?
    /// Connections at once per MX host.
    public var maxConnections = 5
    public var timeout: Double = 300
    public var connectTimeout: Double = 30
    /// Apply the recipient domain's MTA-STS policy (RFC 8461).
    public var mtaSTS = false
    /// Authenticate MX hosts by their DNSSEC-validated TLSA records (RFC
    /// 7672); nil in messages queued before it existed.
    public var dane: Bool?
    /// Where MTA-STS policies are fetched (443; another port for private deployments and tests).
    public var mtaSTSPort = 443
    /// CA certificates (PEM) for verified TLS (MTA-STS policy hosts, MX
    /// hosts under `enforce` or `tls = "starttls"`); default the system store.
    public var caFile: String?

    public init() {}

    public var description: String {
        "mx(port \(port), tls \(tls.rawValue)" + (usesDANE ? ", dane" : "") + (mtaSTS ? ", mta-sts" : "") + ")"
    }

    var usesDANE: Bool { dane ?? false }

    /// The smarthost settings for one MX host of `domain` at one address,
    /// its connection protected as `security` says.
    func smarthost(host: String, address: String, domain: String, security: MXHostSecurity) -> Smarthost {
        var tls = UpstreamTLS.starttls
        var verify = true
        switch security {
        case .configured:
            tls = self.tls
            verify = tls == .starttls
        case .encryptedOnly:
            verify = false
        case .verifiedName, .dane, .unusable, .outsidePolicy:
            break
        }
        var smarthost = Smarthost(
            name: "mx:\(host)", host: host, port: port, tls: tls, verifyCertificate: verify, caFile: caFile,
            authUsername: nil, authMechanism: nil, allowInsecureAuth: false, maxConnections: maxConnections, rate: nil,
            messagesPerConnection: 100, timeout: timeout, connectTimeout: connectTimeout, health: nil, quota: nil,
            idleTimeout: 10, maxRecipients: 100, maxMessageSize: nil, headers: nil)
        smarthost.address = address
        smarthost.heloName = heloName
        smarthost.dkim = dkim
        if case .dane(let records) = security {
            smarthost.dane = DANEAuthentication(records: records, nextHopDomain: domain)
        }
        return smarthost
    }
}
