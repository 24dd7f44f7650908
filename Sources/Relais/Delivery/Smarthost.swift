import RelaisTLS

/// An upstream SMTP server that `route` can send recipients to, with the
/// limits Relais keeps towards it. Stored with each queued message, so a
/// message is delivered the way it was routed even if the policy changes.
public struct Smarthost: Codable, Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var host: String
    public var port: Int
    public var tls: UpstreamTLS
    public var verifyCertificate: Bool
    /// CA certificates (PEM) to trust instead of the system store.
    public var caFile: String?
    /// Login name and mechanism; the secret stays in the policy (never in
    /// the spool): delivery asks for it as a `Credential`.
    public var authUsername: String?
    /// Nil picks PLAIN or LOGIN as the upstream offers.
    public var authMechanism: SASLMechanism?
    /// Send credentials without TLS (only with `tls = "none"`).
    public var allowInsecureAuth: Bool
    public var maxConnections: Int
    /// Messages per second at most; nil for no limit.
    public var rate: Double?
    public var messagesPerConnection: Int
    /// Seconds to wait for each reply.
    public var timeout: Double
    /// Seconds to wait for the TCP connection and the greeting; nil in
    /// messages queued before it existed (then 30).
    public var connectTimeout: Double?
    /// The circuit breaker's settings; nil for the defaults.
    public var health: UpstreamHealthSettings?
    /// Messages per minute, hour and day; nil for none.
    public var quota: UpstreamQuota?
    /// Seconds an idle connection is kept for reuse.
    public var idleTimeout: Double
    /// Recipients the provider takes per message: more are split into
    /// several transactions.
    public var maxRecipients: Int?
    /// Largest message the provider takes: larger ones are refused at DATA.
    public var maxMessageSize: Int?
    /// Header fields added to every message sent there (e.g. Postmark's
    /// `X-PM-Message-Stream`), as name and value.
    public var headers: [[String]]?
    /// `shared = true`: rate, quota and max_connections are counted across
    /// the cluster's nodes in Redis (`cluster` in `relais.config`).
    public var shared: Bool?
    /// The DKIM signers (their labels, `s1._domainkey.example.org (rsa-sha256)`)
    /// whose signatures mail sent here carries; made once, at acceptance.
    public var dkim: [String]?
    /// The address to connect to when `host` is the name for TLS only (an
    /// MX host whose address Relais resolved itself).
    public var address: String?
    /// The EHLO name, when not the relay's hostname (`relais.mx{ helo }`).
    public var heloName: String?
    /// The TLSA records that authenticate this MX host instead of a
    /// certificate authority (DANE, `relais.mx{ dane = true }`).
    public var dane: DANEAuthentication?

    public var description: String { "smarthost:\(name)(\(host):\(port))" }

    var healthSettings: UpstreamHealthSettings { health ?? UpstreamHealthSettings() }
    var connectionTimeout: Double { connectTimeout ?? 30 }
    var isShared: Bool { shared ?? false }
}

/// A credential as the delivery needs it: ready, or to be fetched over HTTPS.
enum Credential: Sendable {
    case ready(String)
    case oauth2(OAuth2TokenSource)
}

/// How Relais protects the connection to an upstream.
public enum UpstreamTLS: String, Codable, Hashable, Sendable, CaseIterable {
    /// STARTTLS required, certificate verified (the default).
    case starttls
    /// TLS from the first byte (port 465 style).
    case implicit
    /// STARTTLS when offered, not verified; plaintext otherwise.
    case opportunistic
    /// Never encrypt.
    case none
}

/// The SASL mechanisms Relais speaks to upstreams (RFC 4954, RFC 4616,
/// Google's XOAUTH2).
public enum SASLMechanism: String, Codable, Hashable, Sendable, CaseIterable {
    case plain = "PLAIN"
    case login = "LOGIN"
    case xoauth2 = "XOAUTH2"
}
