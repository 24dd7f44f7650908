/// `relais.mx{ port, tls, mta_sts, helo, dkim, max_connections, timeout, connect_timeout }`:
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
    /// Where MTA-STS policies are fetched (443; another port for private deployments and tests).
    public var mtaSTSPort = 443
    /// CA certificates (PEM) for verified TLS (MTA-STS policy hosts, MX
    /// hosts under `enforce` or `tls = "starttls"`); default the system store.
    public var caFile: String?

    public init() {}

    public var description: String { "mx(port \(port), tls \(tls.rawValue))" }

    /// The smarthost settings for one MX host at one address; `verifiedTLS`
    /// (an MTA-STS policy in enforce mode) requires STARTTLS and a certificate
    /// valid for the host name.
    func smarthost(host: String, address: String, verifiedTLS: Bool = false) -> Smarthost {
        let tls = verifiedTLS ? UpstreamTLS.starttls : self.tls
        var smarthost = Smarthost(
            name: "mx:\(host)", host: host, port: port, tls: tls, verifyCertificate: tls == .starttls, caFile: caFile,
            authUsername: nil, authMechanism: nil, allowInsecureAuth: false, maxConnections: maxConnections, rate: nil,
            messagesPerConnection: 100, timeout: timeout, connectTimeout: connectTimeout, health: nil, quota: nil,
            idleTimeout: 10, maxRecipients: 100, maxMessageSize: nil, headers: nil)
        smarthost.address = address
        smarthost.heloName = heloName
        smarthost.dkim = dkim
        return smarthost
    }
}
