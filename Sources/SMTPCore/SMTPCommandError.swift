/// Why a syntactically framed command line could not be parsed, precise
/// enough to pick the RFC 3463 code a client can act on.
public enum SMTPCommandError: Error, Sendable, Hashable {
    case unrecognized
    case arguments(verb: String, usage: String)
    case sender(SMTPSyntaxError)
    case recipient(SMTPSyntaxError)
    case parameters(SMTPSyntaxError)
}

extension SMTPCommandError: SMTPReplyConvertible {
    public var reply: SMTPReply {
        switch self {
        case .unrecognized:
            return SMTPSyntaxError.unrecognizedCommand.reply
        case .arguments(_, let usage):
            return SMTPReply(501, EnhancedStatusCode(5, 5, 4), "Syntax: \(usage)")
        case .sender(let error):
            return SMTPReply(501, EnhancedStatusCode(5, 1, 7), "Bad sender address syntax: \(error.reason)")
        case .recipient(let error):
            return SMTPReply(501, EnhancedStatusCode(5, 1, 3), "Bad recipient address syntax: \(error.reason)")
        case .parameters(let error):
            return SMTPReply(555, EnhancedStatusCode(5, 5, 4), "Bad parameters: \(error.reason)")
        }
    }
}

extension SMTPSyntaxError {
    /// A short human reason for logs and reply texts.
    public var reason: String {
        switch self {
        case .bareCarriageReturn: return "bare CR"
        case .bareLineFeed: return "bare LF"
        case .nulCharacter: return "NUL character"
        case .lineTooLong: return "line too long"
        case .unrecognizedCommand: return "command not recognized"
        case .syntax(let reason): return reason
        case .malformedReply(let line): return "malformed reply \(line.debugDescription)"
        case .replyTooLong: return "reply too long"
        }
    }
}
