/// One SMTP command, as the server parses it and the client writes it.
public enum SMTPCommand: Sendable, Hashable {
    case helo(String)
    case ehlo(String)
    case mail(ReversePath, ESMTPParameters)
    case rcpt(MailboxAddress, ESMTPParameters)
    case data
    /// RFC 3030 CHUNKING: a chunk of exactly `size` octets follows the command.
    case bdat(size: Int, last: Bool)
    case rset
    case noop
    case quit
    case vrfy(String)
    case expn(String)
    case help(String?)
    case startTLS
    /// RFC 4954: mechanism and the optional initial response (base64 or `=`).
    case auth(mechanism: String, initialResponse: String?)
}

// MARK: - Encoding

extension SMTPCommand {
    /// The command line without its CRLF.
    public var line: String {
        switch self {
        case .helo(let name): return "HELO \(name)"
        case .ehlo(let name): return "EHLO \(name)"
        case .mail(let path, let parameters):
            return parameters.isEmpty ? "MAIL FROM:\(path.pathString)" : "MAIL FROM:\(path.pathString) \(parameters)"
        case .rcpt(let path, let parameters):
            return parameters.isEmpty ? "RCPT TO:\(path.pathString)" : "RCPT TO:\(path.pathString) \(parameters)"
        case .data: return "DATA"
        case .bdat(let size, let last): return last ? "BDAT \(size) LAST" : "BDAT \(size)"
        case .rset: return "RSET"
        case .noop: return "NOOP"
        case .quit: return "QUIT"
        case .vrfy(let text): return "VRFY \(text)"
        case .expn(let text): return "EXPN \(text)"
        case .help(let topic): return topic.map { "HELP \($0)" } ?? "HELP"
        case .startTLS: return "STARTTLS"
        case .auth(let mechanism, let initial):
            return initial.map { "AUTH \(mechanism) \($0)" } ?? "AUTH \(mechanism)"
        }
    }
}
