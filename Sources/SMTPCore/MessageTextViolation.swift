/// A way in which message text breaks RFC 5321's line rules. Any of them makes
/// the server refuse the whole message once it has read it to the end: passed
/// on, a bare CR or LF is what SMTP smuggling exploits downstream.
public enum MessageTextViolation: Sendable, Hashable {
    case bareCarriageReturn
    case bareLineFeed
    case nulCharacter
    case lineTooLong
}

extension MessageTextViolation: SMTPReplyConvertible {
    public var reply: SMTPReply {
        switch self {
        case .bareCarriageReturn:
            return SMTPReply(550, EnhancedStatusCode(5, 6, 0), "Message refused: bare CR in message text; lines end with CRLF only")
        case .bareLineFeed:
            return SMTPReply(550, EnhancedStatusCode(5, 6, 0), "Message refused: bare LF in message text; lines end with CRLF only")
        case .nulCharacter:
            return SMTPReply(550, EnhancedStatusCode(5, 6, 0), "Message refused: NUL character in message text")
        case .lineTooLong:
            return SMTPReply(550, EnhancedStatusCode(5, 6, 0), "Message refused: line longer than 1000 octets")
        }
    }
}
