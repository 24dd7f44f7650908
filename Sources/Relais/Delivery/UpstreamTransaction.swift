import NIOCore
import SMTPCore

/// A message as it is handed to an upstream.
struct OutboundMessage: Sendable {
    var id: String
    var sender: String
    var recipients: [String]
    var content: ByteBuffer
    var smtpUTF8: Bool
    var body: String?
    var ret: String?
    var envid: String?
    var dsn: [String: RecipientDSN] = [:]
    /// Header fields the upstream wants on every message (from the smarthost).
    var headers: [[String]]?
}

extension OutboundMessage {
    /// `recipients` of a queued message, with their DSN wishes, and its
    /// content stamped with the DKIM signatures of `signers` (the target's).
    init(_ envelope: Envelope, recipients: [String], content: ByteBuffer, signers: [String]?, headers: [[String]]?) {
        self.init(id: envelope.id, sender: envelope.sender, recipients: recipients,
                  content: envelope.stamped(content, targetSigners: signers), smtpUTF8: envelope.smtpUTF8,
                  body: envelope.body, ret: envelope.ret, envid: envelope.envid, dsn: envelope.dsn(for: recipients),
                  headers: headers)
    }
}

/// One mail transaction over an open connection (RFC 5321 3.3): MAIL,
/// RCPTs (pipelined when offered), then BDAT when CHUNKING is offered or
/// DATA with dot-stuffing. A failure before the upstream accepted MAIL
/// throws `FailoverReason`, so the next upstream of the route is tried;
/// after that, outcomes are per recipient.
struct UpstreamTransaction {
    /// The upstream failed before the transaction started: try the next one.
    struct FailoverReason: Error, CustomStringConvertible {
        var description: String
        /// The reply that said so, when there was one.
        var reply: SMTPReply?
        /// When to try this upstream again, when it said (down, quota).
        var retryAt: Double?

        init(description: String, reply: SMTPReply? = nil, retryAt: Double? = nil) {
            self.description = description
            self.reply = reply
            self.retryAt = retryAt
        }
    }

    let connection: SMTPClientConnection
    let message: OutboundMessage

    func run() async throws -> [String: RecipientOutcome] {
        if let refusal = incompatibility() { return Dictionary(every: message.recipients, .failed(refusal)) }
        let capabilities = connection.capabilities
        let passesDSN = capabilities.offers("DSN")
        var mailParameters: [ESMTPParameters.Parameter] = []
        if capabilities.offers("SIZE") { mailParameters.append(.init(keyword: "SIZE", value: "\(message.content.readableBytes)")) }
        if capabilities.offers("8BITMIME"), message.body == "8BITMIME" { mailParameters.append(.init(keyword: "BODY", value: "8BITMIME")) }
        if message.smtpUTF8 { mailParameters.append(.init(keyword: "SMTPUTF8")) }
        if passesDSN, let ret = message.ret { mailParameters.append(.init(keyword: "RET", value: ret)) }
        if passesDSN, let envid = message.envid { mailParameters.append(.init(keyword: "ENVID", value: envid)) }
        let commands = [SMTPCommand.mail(ReversePath(storedText: message.sender), ESMTPParameters(mailParameters))]
            + message.recipients.map { recipient in
                SMTPCommand.rcpt(MailboxAddress(storedText: recipient),
                                 passesDSN ? message.dsn[recipient]?.rcptParameters ?? ESMTPParameters() : ESMTPParameters())
            }

        var replies: [SMTPReply] = []
        // DATA closes the pipelined group (RFC 2920 3.1) when the content goes by DATA.
        let pipelinesData = capabilities.offers("PIPELINING") && !capabilities.offers("CHUNKING")
        connection.needsReset = true
        do {
            if pipelinesData {
                replies = try await connection.exchange(commands + [.data], stage: "MAIL/RCPT/DATA")
            } else if capabilities.offers("PIPELINING") {
                replies = try await connection.exchange(commands, stage: "MAIL/RCPT")
            } else {
                for command in commands {
                    let reply = try await connection.exchange([command], stage: String(command.line.prefix(4)))[0]
                    replies.append(reply)
                    if replies.count == 1 && !reply.isPositive { break }
                }
            }
        } catch {
            throw FailoverReason(description: "\(error)")
        }
        let dataReply = pipelinesData ? replies.removeLast() : nil
        switch TransactionReplies.afterEnvelope(recipients: message.recipients, mail: replies[0], rcpt: Array(replies.dropFirst())) {
        case .failover(let reason):
            await endUnwantedData(dataReply)
            throw FailoverReason(description: reason, reply: replies[0])
        case .finished(let outcomes):
            await endUnwantedData(dataReply)
            if replies[0].isPositive { _ = try? await connection.exchange([.rset], stage: "RSET") }
            return outcomes
        case .sendContent(let accepted, var outcomes):
            let final: SMTPReply
            do {
                final = try await sendContent(dataReply: dataReply)
            } catch {
                for recipient in accepted { outcomes[recipient] = .deferred("\(error)") }
                return outcomes
            }
            connection.countMessage()
            connection.needsReset = false
            return outcomes.merging(TransactionReplies.afterContent(final, accepted: accepted, dsnPassedOn: passesDSN)) { $1 }
        }
    }

    /// An upstream that started DATA although no recipient was accepted
    /// (RFC 2920 3.1 allows it) gets an empty message, which it refuses.
    private func endUnwantedData(_ dataReply: SMTPReply?) async {
        guard dataReply?.code == 354 else { return }
        _ = try? await connection.exchange(bytes: ByteBuffer(string: ".\r\n"), replies: 1, stage: "end of data")
    }

    /// BDAT in one chunk when CHUNKING is offered (no stuffing needed),
    /// otherwise DATA with dot-stuffing; `dataReply` is DATA's reply when
    /// DATA was pipelined with the envelope. The smarthost's header fields
    /// and the content go as they are, never copied into one buffer.
    private func sendContent(dataReply: SMTPReply?) async throws -> SMTPReply {
        var text = [message.content]
        if let headers = message.headers, !headers.isEmpty {
            text.insert(ByteBuffer(string: headers.map { "\($0[0]): \($0[1])\r\n" }.joined()), at: 0)
        }
        if connection.capabilities.offers("CHUNKING") {
            let size = text.reduce(0) { $0 + $1.readableBytes }
            let command = ByteBuffer(string: "\(SMTPCommand.bdat(size: size, last: true).line)\r\n")
            return try await connection.exchange(pieces: [command] + text, replies: 1, stage: "BDAT")[0]
        }
        let start = if let dataReply { dataReply } else { try await connection.exchange([.data], stage: "DATA")[0] }
        guard start.code == 354 else { throw SMTPClientError.unexpected(start, stage: "DATA") }
        var stuffer = DotStuffer()
        var pieces: [ByteBuffer] = []
        for part in text { stuffer.stuff(part, into: &pieces) }
        stuffer.finish(into: &pieces)
        return try await connection.exchange(pieces: pieces, replies: 1, stage: "end of data")[0]
    }

    /// A reason the upstream cannot take this message at all (RFC 1870,
    /// RFC 6531, RFC 6152), or nil.
    private func incompatibility() -> String? {
        let capabilities = connection.capabilities
        if let limit = capabilities.sizeLimit, message.content.readableBytes > limit {
            return "552 5.3.4 message size \(message.content.readableBytes) exceeds the upstream's limit of \(limit)"
        }
        if message.smtpUTF8 && !capabilities.offers("SMTPUTF8") {
            return "553 5.6.7 the upstream does not offer SMTPUTF8, which this message needs"
        }
        if !capabilities.offers("8BITMIME") && message.content.readableBytesView.contains(where: { $0 >= 0x80 }) {
            return "554 5.6.3 8-bit message and the upstream does not offer 8BITMIME (conversion not supported)"
        }
        return nil
    }

}
