import SMTPCore

/// Every fixed reply of the server, so that texts and codes live in one place
/// and tests can name them.
extension SMTPReply {
    static func greeting(_ hostname: String) -> SMTPReply { SMTPReply(220, nil, "\(hostname) ESMTP Relais") }
    static let ok = SMTPReply(250, EnhancedStatusCode(2, 0, 0), "Ok")
    static let senderOk = SMTPReply(250, EnhancedStatusCode(2, 1, 0), "Ok")
    static let recipientOk = SMTPReply(250, EnhancedStatusCode(2, 1, 5), "Ok")
    static let startData = SMTPReply(354, nil, "End data with <CR><LF>.<CR><LF>")
    static func queued(_ id: String) -> SMTPReply { SMTPReply(250, EnhancedStatusCode(2, 0, 0), "Ok: queued as \(id)") }
    static func chunkReceived(_ size: Int) -> SMTPReply { SMTPReply(250, EnhancedStatusCode(2, 0, 0), "Ok: \(size) octets received") }
    static let bye = SMTPReply(221, EnhancedStatusCode(2, 0, 0), "Bye")
    static let vrfy = SMTPReply(252, EnhancedStatusCode(2, 5, 0), "Cannot VRFY user, but will accept message and attempt delivery")
    static let expn = SMTPReply(502, EnhancedStatusCode(5, 5, 1), "EXPN not supported")
    static let help = SMTPReply(214, EnhancedStatusCode(2, 0, 0), "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP")
    static let commandUnavailable = SMTPReply(502, EnhancedStatusCode(5, 5, 1), "Error: command not available")
    static let needHelo = SMTPReply(503, EnhancedStatusCode(5, 5, 1), "Error: send HELO/EHLO first")
    static let needMail = SMTPReply(503, EnhancedStatusCode(5, 5, 1), "Error: need MAIL command")
    static let nestedMail = SMTPReply(503, EnhancedStatusCode(5, 5, 1), "Error: nested MAIL command")
    static let needRecipient = SMTPReply(503, EnhancedStatusCode(5, 5, 1), "Error: need RCPT command")
    static let dataAfterBDAT = SMTPReply(503, EnhancedStatusCode(5, 5, 1), "Error: DATA cannot follow BDAT in one transaction")
    static let tooManyRecipients = SMTPReply(452, EnhancedStatusCode(4, 5, 3), "Error: too many recipients")
    static let relayDenied = SMTPReply(554, EnhancedStatusCode(5, 7, 1), "Relay access denied")
    static let messageTooBig = SMTPReply(552, EnhancedStatusCode(5, 3, 4), "Error: message exceeds fixed maximum message size")
    static let mailLoop = SMTPReply(554, EnhancedStatusCode(5, 4, 6), "Error: too many Received headers; mail loop")
    static let needSMTPUTF8 = SMTPReply(553, EnhancedStatusCode(5, 6, 7), "Error: non-ASCII address requires SMTPUTF8")
    static let badBodyType = SMTPReply(501, EnhancedStatusCode(5, 5, 4), "Error: BODY must be 7BIT or 8BITMIME")
    static let badSize = SMTPReply(501, EnhancedStatusCode(5, 5, 4), "Error: SIZE must be a number")
    static func unsupportedParameter(_ keyword: String) -> SMTPReply {
        SMTPReply(555, EnhancedStatusCode(5, 5, 4), "Error: unsupported parameter \(keyword)")
    }
    static func badDSN(_ reason: String) -> SMTPReply { SMTPReply(501, EnhancedStatusCode(5, 5, 4), "Error: \(reason)") }
    static let readyForTLS = SMTPReply(220, EnhancedStatusCode(2, 0, 0), "Ready to start TLS")
    static let tlsInTransaction = SMTPReply(503, EnhancedStatusCode(5, 5, 1), "Error: STARTTLS inside a mail transaction")
    static let authenticationSucceeded = SMTPReply(235, EnhancedStatusCode(2, 7, 0), "Authentication successful")
    static let authenticationFailed = SMTPReply(535, EnhancedStatusCode(5, 7, 8), "Authentication credentials invalid")
    static let authenticationCancelled = SMTPReply(501, EnhancedStatusCode(5, 0, 0), "Authentication cancelled")
    static let authenticationBadBase64 = SMTPReply(501, EnhancedStatusCode(5, 5, 2), "Error: invalid base64 in the authentication exchange")
    static let authenticationNeedsTLS = SMTPReply(538, EnhancedStatusCode(5, 7, 11), "Encryption required for requested authentication mechanism")
    static let authenticationMechanism = SMTPReply(504, EnhancedStatusCode(5, 5, 4), "Unrecognized authentication type; use PLAIN or LOGIN")
    static let alreadyAuthenticated = SMTPReply(503, EnhancedStatusCode(5, 5, 1), "Error: already authenticated")
    static let tooManyAuthenticationFailures = SMTPReply(421, EnhancedStatusCode(4, 7, 0), "Error: too many failed authentications; closing connection")
    static let tooManyErrors = SMTPReply(421, EnhancedStatusCode(4, 7, 0), "Error: too many errors; closing connection")
    static let earlyTalker = SMTPReply(554, EnhancedStatusCode(5, 5, 0), "Error: you talked before the greeting; closing connection")
    static let tooManyConnections = SMTPReply(421, EnhancedStatusCode(4, 7, 0), "Error: too many connections; try again later")
    static let tooManyConnectionsFromYou = SMTPReply(421, EnhancedStatusCode(4, 7, 0), "Error: too many connections from your address; try again later")
    static let timeout = SMTPReply(421, EnhancedStatusCode(4, 4, 2), "Error: timeout exceeded; closing connection")
    static let shuttingDown = SMTPReply(421, EnhancedStatusCode(4, 3, 2), "Service shutting down; try again later")
    static let spoolFull = SMTPReply(452, EnhancedStatusCode(4, 3, 1), "Error: insufficient system storage; try again later")
    static let spoolFailed = SMTPReply(451, EnhancedStatusCode(4, 3, 0), "Error: could not queue the message; try again later")
}
