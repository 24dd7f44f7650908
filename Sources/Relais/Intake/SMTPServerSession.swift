import Foundation
import SMTPCore

/// What the session knows of the policy without running a hook: limits,
/// what is offered, whether the client may relay. Hook decisions come back
/// as answers to `SMTPServerSession.Action.consult`.
protocol SessionPolicy: AnyObject {
    var hostname: String { get }
    var limits: SMTPLimits { get }
    var maxErrors: Int { get }
    /// The client may relay (its address is in the relay networks, or it
    /// authenticated); what the rcpt stage does when no hook decides.
    var relayAllowed: Bool { get }
    /// STARTTLS can be offered: TLS is configured and not yet in use.
    var offersTLS: Bool { get }
    /// An `auth` hook exists, so AUTH exists.
    var authConfigured: Bool { get }
    /// AUTH may be used on this connection now (TLS, or a loopback client).
    var authPermitted: Bool { get }
    var isAuthenticated: Bool { get }
    /// A new transaction starts: use the newest policy from here on.
    func beginTransaction()
}

/// A decision only the policy's hooks can make; the handler runs them
/// (they may wait on DNS, HTTP or Redis) and hands back a `PolicyAnswer`.
enum PolicyQuestion: Equatable {
    case helo(name: String, extended: Bool)
    case mail(ReversePath, ESMTPParameters, smtpUTF8: Bool, declaredSize: Int?)
    case rcpt(MailboxAddress, ESMTPParameters, RecipientDSN)
    case auth(mechanism: String, username: String, password: String)
}

/// What the hooks decided: the verdict (nil when no hook had an opinion)
/// and the address a mail or rcpt hook rewrote.
struct PolicyAnswer: Equatable {
    var verdict: PolicyVerdict?
    var sender: ReversePath?
    var recipient: MailboxAddress?
}

/// The server side of one SMTP conversation as a plain state machine: it takes
/// parsed commands and answers with actions for the channel handler to carry
/// out. It performs no I/O, so every rule of the dialogue is testable without
/// a socket.
struct SMTPServerSession {
    /// The envelope being built between MAIL and the end of the message.
    struct Transaction {
        var sender: ReversePath
        var parameters: ESMTPParameters
        var recipients: [MailboxAddress] = []
        /// RFC 3461 NOTIFY/ORCPT of each recipient, by its final address.
        var recipientDSN: [MailboxAddress: RecipientDSN] = [:]
        var smtpUTF8: Bool
        var declaredSize: Int?
        /// Set by the first BDAT; DATA may then no longer be used.
        var usesChunking = false
    }

    /// What the channel handler must do next.
    enum Action: Equatable {
        case reply(SMTPReply)
        /// Send the reply, then close the connection.
        case close(SMTPReply)
        /// The 354 has been sent: read dot-stuffed message text.
        case receiveData(SMTPReply)
        /// Read exactly `size` octets; with a refusal, discard them and send it.
        case receiveChunk(size: Int, last: Bool, refusal: SMTPReply?)
        /// Send the 220, drop any pipelined input, start TLS (RFC 3207).
        case startTLS(SMTPReply)
        /// Stop reading input for a while (after a failed authentication).
        case pause(seconds: Int)
        /// Ask the policy; input waits until `answer` is called.
        case consult(PolicyQuestion)
    }

    let policy: any SessionPolicy
    private let parser = SMTPCommandParser()

    private(set) var helo: String?
    private(set) var usedEHLO = false
    private(set) var transaction: Transaction?
    private(set) var errorCount = 0
    private(set) var authFailures = 0
    /// Where an AUTH exchange stands while the client sends its responses.
    private var authExchange: AuthExchange?

    private enum AuthExchange {
        case plain
        case loginUsername
        case loginPassword(String)
    }

    /// Failed authentications before the connection is closed.
    static let maxAuthFailures = 3

    init(policy: any SessionPolicy) {
        self.policy = policy
    }

    private var hostname: String { policy.hostname }
    private var limits: SMTPLimits { policy.limits }

    var greeting: SMTPReply { .greeting(hostname) }

    /// The EHLO keywords, in the order advertised.
    var extensions: [String] {
        ["PIPELINING", "SIZE \(limits.maxMessageSize)", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING", "DSN"]
            + (policy.offersTLS ? ["STARTTLS"] : [])
            + (policy.authConfigured && policy.authPermitted && !policy.isAuthenticated ? ["AUTH PLAIN LOGIN"] : [])
    }

    mutating func handle(_ frame: CommandLineFramer.Frame) -> [Action] {
        switch frame {
        case .invalid(let error):
            return counted(.reply(error.reply))
        case .line(let line) where authExchange != nil:
            return continueAuthentication(line)
        case .line(let line):
            do {
                let command = try parser.parse(line)
                let action = handle(command)
                if case .consult = action { return [action] }
                if case .auth = command { return decided(action) }
                return counted(action)
            } catch {
                return counted(.reply(error.reply))
            }
        }
    }

    /// Counts error replies; past the limit the client is told so and dropped.
    mutating func counted(_ action: Action) -> [Action] {
        guard case .reply(let reply) = action, reply.code >= 400 else { return [action] }
        errorCount += 1
        guard errorCount >= policy.maxErrors else { return [action] }
        return [action, .close(.tooManyErrors)]
    }

    /// Forgets the transaction after its message was queued or refused.
    mutating func endTransaction() {
        transaction = nil
    }

    private mutating func handle(_ command: SMTPCommand) -> Action {
        switch command {
        case .helo(let name), .ehlo(let name):
            return .consult(.helo(name: name, extended: command != .helo(name)))
        case .mail(let sender, let parameters):
            return mail(sender, parameters)
        case .rcpt(let recipient, let parameters):
            return rcpt(recipient, parameters)
        case .data:
            guard let transaction else { return .reply(.needMail) }
            guard !transaction.recipients.isEmpty else { return .reply(.needRecipient) }
            guard !transaction.usesChunking else { return .reply(.dataAfterBDAT) }
            return .receiveData(.startData)
        case .bdat(let size, let last):
            guard transaction != nil else { return .receiveChunk(size: size, last: last, refusal: .needMail) }
            guard transaction?.recipients.isEmpty == false else {
                return .receiveChunk(size: size, last: last, refusal: .needRecipient)
            }
            transaction?.usesChunking = true
            return .receiveChunk(size: size, last: last, refusal: nil)
        case .rset:
            transaction = nil
            return .reply(.ok)
        case .noop:
            return .reply(.ok)
        case .quit:
            return .close(.bye)
        case .vrfy:
            return .reply(.vrfy)
        case .expn:
            return .reply(.expn)
        case .help:
            return .reply(.help)
        case .startTLS:
            guard policy.offersTLS else { return .reply(.commandUnavailable) }
            guard helo != nil else { return .reply(.needHelo) }
            guard transaction == nil else { return .reply(.tlsInTransaction) }
            // RFC 3207 4.2: forget everything learnt before TLS.
            helo = nil
            usedEHLO = false
            return .startTLS(.readyForTLS)
        case .auth(let mechanism, let initial):
            return startAuthentication(mechanism, initial)
        }
    }

    // MARK: - AUTH (RFC 4954)

    private mutating func startAuthentication(_ mechanism: String, _ initial: String?) -> Action {
        guard policy.authConfigured else { return .reply(.commandUnavailable) }
        guard usedEHLO else { return .reply(.needHelo) }
        guard !policy.isAuthenticated else { return .reply(.alreadyAuthenticated) }
        guard transaction == nil else { return .reply(.nestedMail) }
        guard policy.authPermitted else { return .reply(.authenticationNeedsTLS) }
        switch mechanism {
        case "PLAIN":
            guard let initial else {
                authExchange = .plain
                return .reply(SMTPReply(334, nil, ""))
            }
            return finishPlain(initial)
        case "LOGIN":
            guard let initial else {
                authExchange = .loginUsername
                return .reply(SMTPReply(334, nil, "VXNlcm5hbWU6"))
            }
            guard let username = Self.base64Text(initial) else { return .reply(.authenticationBadBase64) }
            authExchange = .loginPassword(username)
            return .reply(SMTPReply(334, nil, "UGFzc3dvcmQ6"))
        default:
            return .reply(.authenticationMechanism)
        }
    }

    private mutating func continueAuthentication(_ line: String) -> [Action] {
        guard let exchange = authExchange else { return [] }
        authExchange = nil
        if line == "*" { return counted(.reply(.authenticationCancelled)) }
        switch exchange {
        case .plain:
            let action = finishPlain(line)
            if case .consult = action { return [action] }
            return decided(action)
        case .loginUsername:
            guard let username = Self.base64Text(line) else { return counted(.reply(.authenticationBadBase64)) }
            authExchange = .loginPassword(username)
            return [.reply(SMTPReply(334, nil, "UGFzc3dvcmQ6"))]
        case .loginPassword(let username):
            guard let password = Self.base64Text(line) else { return counted(.reply(.authenticationBadBase64)) }
            return [.consult(.auth(mechanism: "LOGIN", username: username, password: password))]
        }
    }

    /// PLAIN: base64 of `authzid NUL authcid NUL password` (RFC 4616).
    private mutating func finishPlain(_ response: String) -> Action {
        guard let bytes = Self.base64Bytes(response) else { return .reply(.authenticationBadBase64) }
        let parts = bytes.split(separator: 0, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[1].isEmpty else { return .reply(.authenticationFailed) }
        return .consult(.auth(mechanism: "PLAIN", username: String(decoding: parts[1], as: UTF8.self),
                              password: String(decoding: parts[2], as: UTF8.self)))
    }

    // MARK: - Answers

    /// Carries on with the command that asked `question`, now that the
    /// policy answered.
    mutating func answer(_ question: PolicyQuestion, _ answer: PolicyAnswer) -> [Action] {
        switch question {
        case .helo(let name, let extended):
            return counted(greeted(name, extended: extended, answer.verdict))
        case .mail(let sender, let parameters, let smtpUTF8, let declaredSize):
            return counted(mailDecided(answer.sender ?? sender, parameters, smtpUTF8: smtpUTF8,
                                       declaredSize: declaredSize, answer.verdict))
        case .rcpt(let recipient, _, let dsn):
            return counted(rcptDecided(answer.recipient ?? recipient, dsn, answer.verdict))
        case .auth:
            return decided(authenticated(answer.verdict))
        }
    }

    private mutating func greeted(_ name: String, extended: Bool, _ verdict: PolicyVerdict?) -> Action {
        if let verdict, let refusal = refusalAction(verdict) { return refusal }
        helo = name
        usedEHLO = extended
        transaction = nil
        return .reply(extended ? SMTPReply(250, nil, ["\(hostname) greets \(name)"] + extensions) : SMTPReply(250, nil, hostname))
    }

    private mutating func authenticated(_ verdict: PolicyVerdict?) -> Action {
        switch verdict {
        case .accept?:
            return .reply(.authenticationSucceeded)
        case .tempfail(let reply)?, .disconnect(let reply)?:
            return .reply(reply)
        case .reject?, .discard?, nil:
            authFailures += 1
            return .reply(.authenticationFailed)
        }
    }

    /// Counts the reply; a failed authentication also slows the client
    /// down, and too many of them close the connection.
    private mutating func decided(_ action: Action) -> [Action] {
        guard case .reply(let reply) = action, reply == .authenticationFailed else { return counted(action) }
        if authFailures >= Self.maxAuthFailures { return [action, .close(.tooManyAuthenticationFailures)] }
        return counted(action) + [.pause(seconds: authFailures)]
    }

    private static func base64Bytes(_ text: String) -> [UInt8]? {
        if text == "=" { return [] }
        return Data(base64Encoded: text).map { Array($0) }
    }

    private static func base64Text(_ text: String) -> String? {
        base64Bytes(text).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The action for a refusing verdict; nil for accept (and discard).
    private func refusalAction(_ verdict: PolicyVerdict) -> Action? {
        switch verdict {
        case .reject(let reply), .tempfail(let reply): return .reply(reply)
        case .disconnect(let reply): return .close(reply)
        case .accept, .discard: return nil
        }
    }

    /// The positive reply, with the text of `relais.accept(text)` if given.
    private func accepted(_ verdict: PolicyVerdict?, _ reply: SMTPReply) -> SMTPReply {
        guard case .accept(let text?) = verdict else { return reply }
        return SMTPReply(reply.code, reply.enhanced, text)
    }

    private mutating func mail(_ sender: ReversePath, _ parameters: ESMTPParameters) -> Action {
        guard helo != nil else { return .reply(.needHelo) }
        guard transaction == nil else { return .reply(.nestedMail) }
        policy.beginTransaction()
        if !usedEHLO, let first = parameters.parameters.first { return .reply(.unsupportedParameter(first.keyword)) }
        var declaredSize: Int?
        for parameter in parameters.parameters {
            switch parameter.keyword {
            case "SIZE":
                guard let text = parameter.value, let size = Int(text), size >= 0 else { return .reply(.badSize) }
                guard size <= limits.maxMessageSize else { return .reply(.messageTooBig) }
                declaredSize = size
            case "BODY":
                guard let body = parameter.value?.uppercased(), body == "7BIT" || body == "8BITMIME" else {
                    return .reply(.badBodyType)
                }
            case "SMTPUTF8":
                guard parameter.value == nil else { return .reply(.unsupportedParameter("SMTPUTF8=")) }
            case "AUTH" where usedEHLO:
                break
            case "RET":
                guard parameter.value.flatMap(DSNParameters.ret) != nil else { return .reply(.badDSN("RET must be FULL or HDRS")) }
            case "ENVID":
                guard parameter.value.map(DSNParameters.isValidEnvelopeID) == true else {
                    return .reply(.badDSN("ENVID must be xtext of at most 100 characters"))
                }
            default:
                return .reply(.unsupportedParameter(parameter.keyword))
            }
        }
        let smtpUTF8 = parameters.contains("SMTPUTF8")
        if sender.mailbox?.needsSMTPUTF8 == true && !smtpUTF8 { return .reply(.needSMTPUTF8) }
        return .consult(.mail(sender, parameters, smtpUTF8: smtpUTF8, declaredSize: declaredSize))
    }

    private mutating func mailDecided(_ sender: ReversePath, _ parameters: ESMTPParameters, smtpUTF8: Bool,
                                      declaredSize: Int?, _ verdict: PolicyVerdict?) -> Action {
        if let verdict, let refusal = refusalAction(verdict) { return refusal }
        if sender.mailbox?.needsSMTPUTF8 == true && !smtpUTF8 { return .reply(.needSMTPUTF8) }
        transaction = Transaction(sender: sender, parameters: parameters, smtpUTF8: smtpUTF8, declaredSize: declaredSize)
        return .reply(accepted(verdict, .senderOk))
    }

    private mutating func rcpt(_ recipient: MailboxAddress, _ parameters: ESMTPParameters) -> Action {
        guard let current = transaction else { return .reply(.needMail) }
        var dsn = RecipientDSN()
        for parameter in parameters.parameters {
            switch parameter.keyword {
            case "NOTIFY" where usedEHLO:
                guard let notify = parameter.value.flatMap(DSNParameters.notify) else {
                    return .reply(.badDSN("NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY"))
                }
                dsn.notify = notify
            case "ORCPT" where usedEHLO:
                guard let value = parameter.value, DSNParameters.isValidORCPT(value) else {
                    return .reply(.badDSN("ORCPT must be addr-type;xtext"))
                }
                dsn.orcpt = value
            default:
                return .reply(.unsupportedParameter(parameter.keyword))
            }
        }
        if recipient.needsSMTPUTF8 && !current.smtpUTF8 { return .reply(.needSMTPUTF8) }
        guard current.recipients.count < limits.maxRecipients else { return .reply(.tooManyRecipients) }
        return .consult(.rcpt(recipient, parameters, dsn))
    }

    private mutating func rcptDecided(_ recipient: MailboxAddress, _ dsn: RecipientDSN, _ verdict: PolicyVerdict?) -> Action {
        guard let current = transaction else { return .reply(.needMail) }
        if let verdict, let refusal = refusalAction(verdict) { return refusal }
        if verdict == nil && !policy.relayAllowed { return .reply(.relayDenied) }
        if recipient.needsSMTPUTF8 && !current.smtpUTF8 { return .reply(.needSMTPUTF8) }
        transaction?.recipients.append(recipient)
        if dsn != RecipientDSN() { transaction?.recipientDSN[recipient] = dsn }
        return .reply(accepted(verdict, .recipientOk))
    }
}
