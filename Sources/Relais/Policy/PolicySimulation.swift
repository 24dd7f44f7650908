import Foundation
import Logging
import NIOCore
import NIOPosix
import SMTPCore

/// `relais simulate`: runs a message through the policy's hooks and routing
/// exactly as the server would (same session state machine, same defaults),
/// without network or spool, and reports each stage.
public struct PolicySimulation {
    public struct Input: Sendable {
        public var sender: String
        public var recipients: [String]
        public var clientIP = "127.0.0.1"
        public var helo = "client.example"
        public var authUser: String?
        /// The message; bare LF line ends are taken as CRLF.
        public var message: [UInt8]

        public init(sender: String, recipients: [String], message: [UInt8]) {
            self.sender = sender
            self.recipients = recipients
            self.message = message
        }
    }

    public struct Report: Sendable {
        public var lines: [String] = []
        /// True when the message would not be delivered to anyone.
        public var refused = false
        /// What the client would hear at the end of the message, when it got that far.
        public var reply: SMTPReply?
    }

    /// Loads the policy and runs the session on an event loop, as a
    /// connection's hooks run. Blocking: call from outside the event loops.
    public static func run(_ source: PolicySource, overrides: PolicySettings, input: Input,
                           logger: Logger) throws -> Report {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let generation = try PolicyGeneration.load(source, overrides: overrides, base: ServerConfiguration(),
                                                   loops: [loop], number: 1, logger: logger)
        return try loop.submit { simulate(generation, input: input, loop: loop, logger: logger) }.wait()
    }

    private static func simulate(_ generation: PolicyGeneration, input: Input, loop: any EventLoop,
                                 logger: Logger) -> Report {
        var info = SessionInfo(id: "simulation", remoteIP: input.clientIP, remotePort: 0, localIP: "127.0.0.1",
                               localPort: 25, relayAllowed: false)
        info.authUser = input.authUser
        let policy = ConnectionPolicy(store: PolicyStore(generation), loop: loop, info: info, timings: HookTimings(),
                                      logger: logger)
        defer { policy.detach() }
        var report = Report()
        func line(_ stage: String, _ subject: String, _ outcome: String) {
            let padded = subject.count < 28 ? subject.padding(toLength: 28, withPad: " ", startingAt: 0) : subject
            report.lines.append("\(stage.padding(toLength: 9, withPad: " ", startingAt: 0)) \(padded) -> \(outcome)")
        }
        func refused(_ reply: SMTPReply) -> Report {
            report.refused = true
            report.reply = reply
            return report
        }

        let relay = policy.relayAllowed ? "relay allowed" : "relay not allowed"
        if let verdict = policy.connect(), let refusal = verdict.refusal {
            line("connect", input.clientIP, "\(refusal) (connection closed)")
            report.refused = true
            return report
        }
        line("connect", input.clientIP, "accepted (\(relay))")

        var session = SMTPServerSession(policy: policy)
        func step(_ stage: String, _ subject: String, _ command: String) -> Bool {
            let actions = session.handle(.line(command))
            for action in actions {
                switch action {
                case .reply(let reply):
                    line(stage, subject, reply.code == 250 && reply.lines.count > 1 ? "250 \(reply.lines[0])" : reply.description)
                    if !reply.isPositive { return false }
                case .close(let reply):
                    line(stage, subject, "\(reply) (connection closed)")
                    return false
                case .receiveData, .receiveChunk, .startTLS, .pause:
                    break
                }
            }
            return true
        }
        guard step("helo", input.helo, "EHLO \(input.helo)") else { report.refused = true; return report }
        let utf8 = (input.sender + input.recipients.joined()).utf8.contains { $0 >= 0x80 }
        guard step("mail", "<\(input.sender)>", "MAIL FROM:<\(input.sender)>" + (utf8 ? " SMTPUTF8" : "")) else {
            report.refused = true
            return report
        }
        if let sender = session.transaction?.sender, sender.description != input.sender {
            line("", "", "sender rewritten to <\(sender)>")
        }
        for recipient in input.recipients {
            _ = step("rcpt", "<\(recipient)>", "RCPT TO:<\(recipient)>")
        }
        guard let transaction = session.transaction, !transaction.recipients.isEmpty else {
            line("data", "", "not reached: no recipient accepted")
            report.refused = true
            return report
        }

        let content = ByteBuffer(bytes: Self.crlf(input.message))
        let size = "(\(content.readableBytes) bytes)"
        let hops = HeaderSection.count(of: "Received", in: content, from: 0)
        if let loop = MessageAcceptance.loopRefusal(receivedFields: hops, limits: policy.limits) {
            line("data", size, "mail loop")
            report.lines.append("result    refused: \(loop)")
            return refused(loop)
        }
        let draft = MessageDraft(id: "SIMULATION", sender: transaction.sender, recipients: transaction.recipients,
                                 content: content, smtpUTF8: transaction.smtpUTF8)
        let decision = policy.decide(draft)
        switch decision.verdict {
        case .reject(let reply), .tempfail(let reply), .disconnect(let reply):
            line("data", size, reply.description)
        case .discard:
            line("data", size, "discarded: 250 to the client, delivered to nobody")
        case .accept, nil:
            line("data", size, decision.verdict == nil ? "accepted (no verdict)" : "accepted")
            report.lines.append("envelope  from <\(draft.sender)> to \(draft.recipients.map { "<\($0)>" }.joined(separator: ", "))")
            report.lines.append("headers" + (draft.headersChanged ? " (changed by the data hook)" : ""))
            for field in draft.headers.fields {
                let text = String(decoding: field.raw, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
                for part in text.split(separator: "\n") { report.lines.append("  \(part)") }
            }
            for route in decision.routes {
                line("route", "<\(route.recipient)>",
                     route.refusal.map { "refused: \($0)" } ?? route.targets.map(\.description).joined(separator: " -> "))
            }
        }
        switch MessageAcceptance.outcome(of: decision, size: content.readableBytes) {
        case .refuse(let reply), .disconnect(let reply):
            let deferred = decision.verdict == nil && decision.routes.contains { ($0.refusal?.code ?? 500) < 500 }
            report.lines.append("result    " + (deferred ? "the whole message is deferred (a route deferred): \(reply)"
                                                        : "refused: \(reply)"))
            return refused(reply)
        case .discard(let reason):
            report.lines.append("result    \(reason): \(SMTPReply.queued(draft.id))")
            report.refused = true
            report.reply = .queued(draft.id)
        case .queue(let routed, let bounced):
            report.lines.append("result    queued for \(routed.count) recipient(s)"
                + (bounced.isEmpty ? "" : ", \(bounced.count) bounced") + ": \(SMTPReply.queued(draft.id))")
            report.reply = .queued(draft.id)
        }
        return report
    }

    /// Turns bare LF line ends into CRLF, as a mail client would send them.
    static func crlf(_ bytes: [UInt8]) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count + bytes.count / 40)
        var previous: UInt8 = 0
        for byte in bytes {
            if byte == 10 && previous != 13 { result.append(13) }
            result.append(byte)
            previous = byte
        }
        return result
    }
}
