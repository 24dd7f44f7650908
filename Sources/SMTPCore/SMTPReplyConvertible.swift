/// An error that the server answers with a specific reply. Every error a peer
/// can cause conforms, so no error reaches a client as a generic failure.
public protocol SMTPReplyConvertible: Error {
    var reply: SMTPReply { get }
}

extension SMTPSyntaxError: SMTPReplyConvertible {
    public var reply: SMTPReply {
        switch self {
        case .bareCarriageReturn:
            return SMTPReply(500, EnhancedStatusCode(5, 5, 2), "Error: bare CR in command; lines end with CRLF only")
        case .bareLineFeed:
            return SMTPReply(500, EnhancedStatusCode(5, 5, 2), "Error: bare LF in command; lines end with CRLF only")
        case .nulCharacter:
            return SMTPReply(500, EnhancedStatusCode(5, 5, 2), "Error: NUL character in command")
        case .lineTooLong:
            return SMTPReply(500, EnhancedStatusCode(5, 5, 2), "Error: command line too long (512 octets at most)")
        case .unrecognizedCommand:
            return SMTPReply(500, EnhancedStatusCode(5, 5, 2), "Error: command not recognized")
        case .syntax(let reason):
            return SMTPReply(501, EnhancedStatusCode(5, 5, 4), "Syntax error: \(reason)")
        case .malformedReply, .replyTooLong:
            return SMTPReply(500, EnhancedStatusCode(5, 5, 2), "Error: malformed input")
        }
    }
}
