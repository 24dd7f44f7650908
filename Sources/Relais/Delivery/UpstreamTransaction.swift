import NIOCore
import SMTPCore

/// What happened to one recipient in one attempt.
enum RecipientOutcome: Equatable, Sendable {
    /// Accepted; `dsnPassedOn` when the upstream took over DSN duties (RFC 3461).
    case delivered(String, dsnPassedOn: Bool)
    /// Try again later.
    case deferred(String)
    /// Final: bounce.
    case failed(String)
}

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

/// One mail transaction over an open connection (RFC 5321 3.3): MAIL,
/// RCPTs (pipelined when offered), then BDAT when CHUNKING is offered or
/// DATA with dot-stuffing. A failure before the upstream accepted MAIL
/// throws `FailoverReason`, so the next upstream of the route is tried;
/// after that, outcomes are per recipient.
struct UpstreamTransaction {
    /// The upstream failed before the transaction started: try the next one.
    struct FailoverReason: Error, CustomStringConvertible {
        var description: String
    }

    let connection: SMTPClientConnection
    let message: OutboundMessage

    func run() async throws -> [String: RecipientOutcome] {
        if let refusal = incompatibility() { return all(.failed(refusal)) }
        var mail = "MAIL FROM:<\(message.sender)>"
        if connection.offers("SIZE") { mail += " SIZE=\(message.content.readableBytes)" }
        if connection.offers("8BITMIME"), message.body == "8BITMIME" { mail += " BODY=8BITMIME" }
        if message.smtpUTF8 { mail += " SMTPUTF8" }
        let passesDSN = connection.offers("DSN")
        if passesDSN, let ret = message.ret { mail += " RET=\(ret)" }
        if passesDSN, let envid = message.envid { mail += " ENVID=\(envid)" }
        let commands = [mail] + message.recipients.map {
            "RCPT TO:<\($0)>" + (passesDSN ? message.dsn[$0]?.rcptParameters ?? "" : "")
        }

        var replies: [SMTPReply] = []
        connection.needsReset = true
        do {
            if connection.offers("PIPELINING") {
                replies = try await connection.exchange(commands.joined(separator: "\r\n"), replies: commands.count,
                                                        stage: "MAIL/RCPT")
            } else {
                for command in commands {
                    let reply = try await connection.exchange(command, replies: 1, stage: String(command.prefix(4)))[0]
                    replies.append(reply)
                    if replies.count == 1 && !reply.isPositive { break }
                }
            }
        } catch {
            throw FailoverReason(description: "\(error)")
        }
        let mailReply = replies[0]
        if mailReply.isTransientFailure { throw FailoverReason(description: "MAIL answered \(mailReply)") }
        if !mailReply.isPositive { return all(.failed("MAIL answered \(mailReply)")) }

        var outcomes: [String: RecipientOutcome] = [:]
        var accepted: [String] = []
        for (recipient, reply) in zip(message.recipients, replies.dropFirst()) {
            if reply.isPositive {
                accepted.append(recipient)
            } else if reply.isTransientFailure {
                outcomes[recipient] = .deferred("RCPT answered \(reply)")
            } else {
                outcomes[recipient] = .failed("RCPT answered \(reply)")
            }
        }
        guard !accepted.isEmpty else {
            _ = try? await connection.exchange(SMTPCommand.rset.line, replies: 1, stage: "RSET")
            return outcomes
        }
        let final: SMTPReply
        do {
            final = try await sendContent()
        } catch {
            for recipient in accepted { outcomes[recipient] = .deferred("\(error)") }
            return outcomes
        }
        connection.countMessage()
        connection.needsReset = false
        for recipient in accepted {
            if final.isPositive {
                outcomes[recipient] = .delivered(final.description, dsnPassedOn: passesDSN)
            } else if final.isTransientFailure {
                outcomes[recipient] = .deferred("end of data answered \(final)")
            } else {
                outcomes[recipient] = .failed("end of data answered \(final)")
            }
        }
        return outcomes
    }

    /// BDAT in one chunk when CHUNKING is offered (no stuffing needed),
    /// otherwise DATA with dot-stuffing.
    private func sendContent() async throws -> SMTPReply {
        var content = message.content
        if let headers = message.headers, !headers.isEmpty {
            var withHeaders = ByteBuffer(string: headers.map { "\($0[0]): \($0[1])\r\n" }.joined())
            withHeaders.writeBuffer(&content)
            content = withHeaders
        }
        let message = OutboundMessage(id: self.message.id, sender: self.message.sender, recipients: self.message.recipients,
                                      content: content, smtpUTF8: self.message.smtpUTF8, body: self.message.body)
        if connection.offers("CHUNKING") {
            var bytes = ByteBuffer(string: "\(SMTPCommand.bdat(size: message.content.readableBytes, last: true).line)\r\n")
            var content = message.content
            bytes.writeBuffer(&content)
            return try await connection.exchange(bytes: bytes, replies: 1, stage: "BDAT")[0]
        }
        let start = try await connection.exchange(SMTPCommand.data.line, replies: 1, stage: "DATA")[0]
        guard start.code == 354 else { throw SMTPClientError.unexpected(start, stage: "DATA") }
        var stuffer = DotStuffer()
        var bytes = ByteBuffer()
        bytes.reserveCapacity(message.content.readableBytes + message.content.readableBytes / 50 + 8)
        stuffer.stuff(message.content, into: &bytes)
        stuffer.finish(into: &bytes)
        return try await connection.exchange(bytes: bytes, replies: 1, stage: "end of data")[0]
    }

    /// A reason the upstream cannot take this message at all (RFC 1870,
    /// RFC 6531, RFC 6152), or nil.
    private func incompatibility() -> String? {
        if let limit = connection.sizeLimit, limit > 0, message.content.readableBytes > limit {
            return "552 5.3.4 message size \(message.content.readableBytes) exceeds the upstream's limit of \(limit)"
        }
        if message.smtpUTF8 && !connection.offers("SMTPUTF8") {
            return "553 5.6.7 the upstream does not offer SMTPUTF8, which this message needs"
        }
        if !connection.offers("8BITMIME") && message.content.readableBytesView.contains(where: { $0 >= 0x80 }) {
            return "554 5.6.3 8-bit message and the upstream does not offer 8BITMIME (conversion not supported)"
        }
        return nil
    }

    private func all(_ outcome: RecipientOutcome) -> [String: RecipientOutcome] {
        Dictionary(message.recipients.map { ($0, outcome) }, uniquingKeysWith: { first, _ in first })
    }
}
