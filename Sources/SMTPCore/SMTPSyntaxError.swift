/// Why a line from a peer could not be understood. The server turns each case
/// into a precise reply; the client turns it into a delivery failure reason.
public enum SMTPSyntaxError: Error, Sendable, Hashable {
    case bareCarriageReturn
    case bareLineFeed
    case nulCharacter
    case lineTooLong
    case unrecognizedCommand
    case syntax(String)
    case malformedReply(String)
    case replyTooLong
}
