/// Every size and count limit of the SMTP grammar in one place, so that the
/// parser, the server and the client agree on them.
public struct SMTPLimits: Sendable, Equatable {
    /// RFC 5321 4.5.3.1.4: a command line, CRLF included.
    public var commandLineLength: Int = 512
    /// RFC 5321 4.5.3.1.6: a text line of the message, CRLF included.
    public var textLineLength: Int = 1000
    /// A reply line read from an upstream. RFC 5321 4.5.3.1.5 says 512
    /// octets, but real servers send longer lines; this many are taken.
    public var replyLineLength: Int = 4096
    /// Lines in one reply read from an upstream.
    public var replyLines: Int = 256
    /// RFC 5321 4.5.3.1.1: a local part.
    public var localPartLength: Int = 64
    /// RFC 5321 4.5.3.1.2: a domain.
    public var domainLength: Int = 255
    /// RFC 5321 4.5.3.1.3: a path, angle brackets included.
    public var pathLength: Int = 256
    /// Largest message accepted, in octets of content as received.
    public var maxMessageSize: Int = 25 * 1024 * 1024
    /// Recipients accepted in one transaction.
    public var maxRecipients: Int = 1000
    /// More `Received:` headers than this is a mail loop (RFC 5321 6.3).
    public var maxReceivedHeaders: Int = 100

    public init() {}
}
