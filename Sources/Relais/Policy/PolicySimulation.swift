import Foundation
import Logging
import NIOCore
import NIOPosix
import RelaisDNS
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
    }

    /// Loads the policy and runs the session on an event loop, as a
    /// connection's hooks run. Blocking: call from outside the event loops.
    public static func run(_ source: PolicySource, overrides: PolicySettings, input: Input,
                           logger: Logger) throws -> Report {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let generation = try PolicyGeneration.load(source, overrides: overrides, base: ServerConfiguration(),
                                                   loops: [loop], number: 1, services: HookServices(), logger: logger)
        return try loop.flatSubmit {
            let promise = loop.makePromise(of: Report.self)
            simulate(generation, input: input, loop: loop, logger: logger) { promise.succeed($0) }
            return promise.futureResult
        }.wait()
    }

    /// Runs the stages one after another; hooks may wait on real DNS, HTTP
    /// and Redis services, as they would in the server.
    private static func simulate(_ generation: PolicyGeneration, input: Input, loop: any EventLoop,
                                 logger: Logger, done: @escaping (Report) -> Void) {
        var info = SessionInfo(id: "simulation", remoteIP: input.clientIP, remotePort: 0, localIP: "127.0.0.1",
                               localPort: 25, relayAllowed: false)
        info.authUser = input.authUser
        let policy = ConnectionPolicy(store: PolicyStore(generation), loop: loop, info: info, timings: HookTimings(),
                                      logger: logger)
        let run = SimulationRun(policy: policy, input: input, loop: loop)
        run.connect { connected in
            let finish = {
                policy.detach()
                done(run.report)
            }
            guard connected else { return finish() }
            run.envelope { transaction in
                guard let transaction else { return finish() }
                run.message(transaction, finish)
            }
        }
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

/// One simulated session, stage by stage, writing the report as it goes.
private final class SimulationRun {
    let policy: ConnectionPolicy
    let input: PolicySimulation.Input
    let loop: any EventLoop
    var session: SMTPServerSession
    var report = PolicySimulation.Report()

    init(policy: ConnectionPolicy, input: PolicySimulation.Input, loop: any EventLoop) {
        self.policy = policy
        self.input = input
        self.loop = loop
        self.session = SMTPServerSession(policy: policy)
    }

    private func line(_ stage: String, _ subject: String, _ outcome: String) {
        let padded = subject.count < 28 ? subject.padding(toLength: 28, withPad: " ", startingAt: 0) : subject
        report.lines.append("\(stage.padding(toLength: 9, withPad: " ", startingAt: 0)) \(padded) -> \(outcome)")
    }

    /// The message is not delivered to anyone.
    private func refuse() {
        report.refused = true
    }

    func connect(_ done: @escaping (Bool) -> Void) {
        policy.connect { [self] verdict in
            if let refusal = verdict?.refusal {
                line("connect", input.clientIP, "\(refusal) (connection closed)")
                refuse()
                return done(false)
            }
            line("connect", input.clientIP, "accepted (\(policy.relayAllowed ? "relay allowed" : "relay not allowed"))")
            done(true)
        }
    }

    /// EHLO, MAIL and every RCPT through the session state machine; the
    /// transaction when a recipient was accepted.
    func envelope(_ done: @escaping (SMTPServerSession.Transaction?) -> Void) {
        step("helo", input.helo, "EHLO \(input.helo)") { [self] greeted in
            guard greeted else {
                refuse()
                return done(nil)
            }
            let utf8 = (input.sender + input.recipients.joined()).utf8.contains { $0 >= 0x80 }
            step("mail", "<\(input.sender)>", "MAIL FROM:<\(input.sender)>" + (utf8 ? " SMTPUTF8" : "")) { [self] accepted in
                guard accepted else {
                    refuse()
                    return done(nil)
                }
                if let sender = session.transaction?.sender, sender.description != input.sender {
                    line("", "", "sender rewritten to <\(sender)>")
                }
                recipients(input.recipients[...]) { [self] in
                    guard let transaction = session.transaction, !transaction.recipients.isEmpty else {
                        line("data", "", "not reached: no recipient accepted")
                        refuse()
                        return done(nil)
                    }
                    done(transaction)
                }
            }
        }
    }

    private func recipients(_ remaining: ArraySlice<String>, _ done: @escaping () -> Void) {
        guard let recipient = remaining.first else { return done() }
        step("rcpt", "<\(recipient)>", "RCPT TO:<\(recipient)>") { [self] _ in recipients(remaining.dropFirst(), done) }
    }

    /// Sends one command line; false when the session refused it.
    private func step(_ stage: String, _ subject: String, _ command: String, _ done: @escaping (Bool) -> Void) {
        settle(session.handle(.line(command)), stage, subject, done)
    }

    /// Reports the session's actions; a question goes to the policy and
    /// its answer's actions are reported in turn.
    private func settle(_ actions: [SMTPServerSession.Action], _ stage: String, _ subject: String,
                        _ done: @escaping (Bool) -> Void) {
        for action in actions {
            switch action {
            case .reply(let reply):
                line(stage, subject, reply.code == 250 && reply.lines.count > 1 ? "250 \(reply.lines[0])" : reply.description)
                if !reply.isPositive { return done(false) }
            case .close(let reply):
                line(stage, subject, "\(reply) (connection closed)")
                return done(false)
            case .consult(let question):
                return policy.ask(question) { [self] answer in
                    settle(session.answer(question, answer), stage, subject, done)
                }
            case .receiveData, .receiveChunk, .startTLS, .pause:
                break
            }
        }
        done(true)
    }

    /// The message text through the loop check, the data and route hooks
    /// and the acceptance rules the server uses.
    func message(_ transaction: SMTPServerSession.Transaction, _ done: @escaping () -> Void) {
        let content = ByteBuffer(bytes: PolicySimulation.crlf(input.message))
        let size = "(\(content.readableBytes) bytes)"
        let hops = HeaderSection.count(of: "Received", in: content, from: 0)
        if let loop = MessageAcceptance.loopRefusal(receivedFields: hops, limits: policy.limits) {
            line("data", size, "mail loop")
            report.lines.append("result    refused: \(loop)")
            refuse()
            return done()
        }
        if let malformed = MessageAcceptance.headerRefusal(content, from: 0, strict: policy.configuration.strictHeaderSyntax) {
            line("data", size, "malformed header section")
            report.lines.append("result    refused: \(malformed)")
            refuse()
            return done()
        }
        let draft = MessageDraft(id: "SIMULATION", sender: transaction.sender, recipients: transaction.recipients,
                                 content: content, smtpUTF8: transaction.smtpUTF8)
        policy.decide(draft) { [self] decision in
            report(decision, of: draft, size: size)
            var direct: [String: MXTarget] = [:]
            for route in decision.routes {
                for case .mx(let target) in route.targets { direct[MXCourier.domain(of: route.recipient.description)] = target }
            }
            describeMX(direct.sorted { $0.key < $1.key }[...], done)
        }
    }

    private func report(_ decision: MessageDecision, of draft: MessageDraft, size: String) {
        switch decision.verdict {
        case .reject(let reply), .tempfail(let reply), .disconnect(let reply):
            line("data", size, reply.description)
        case .discard:
            line("data", size, "discarded: 250 to the client, delivered to nobody")
        case .accept, nil:
            line("data", size, decision.verdict == nil ? "accepted (no verdict)" : "accepted")
            describe(draft, decision)
        }
        switch MessageAcceptance.outcome(of: decision, size: draft.size) {
        case .refuse(let reply), .disconnect(let reply):
            let deferred = decision.verdict == nil && decision.routes.contains { ($0.refusal?.code ?? 500) < 500 }
            report.lines.append("result    " + (deferred ? "the whole message is deferred (a route deferred): \(reply)"
                                                        : "refused: \(reply)"))
            refuse()
        case .discard(let reason):
            report.lines.append("result    \(reason): \(SMTPReply.queued(draft.id))")
            refuse()
        case .queue(let routed, let bounced):
            report.lines.append("result    queued for \(routed.count) recipient(s)"
                + (bounced.isEmpty ? "" : ", \(bounced.count) bounced") + ": \(SMTPReply.queued(draft.id))")
        }
    }

    /// For recipients routed to their MX hosts: the plan a delivery would
    /// follow now, the domain's MTA-STS policy and each host's DANE
    /// decision when the target applies them, from real lookups.
    private func describeMX(_ domains: ArraySlice<(key: String, value: MXTarget)>, _ done: @escaping () -> Void) {
        guard let (domain, target) = domains.first else { return done() }
        let resolver = policy.generation.resolver
        let loop = self.loop
        let logger = Logger(label: "relais.simulate")
        loop.makeFutureWithTask { () -> (Result<DNSAnswer, DNSError>, MTASTSPolicy?, [String]) in
            let answer = await resolver.answer(domain, .mx, on: loop)
            var sts: MTASTSPolicy?
            if target.mtaSTS {
                let policies = MTASTSPolicies(folder: NSTemporaryDirectory() + "relais-simulate-mta-sts", resolver: resolver,
                                              loop: loop, logger: logger)
                sts = await policies.policy(for: domain, port: target.mtaSTSPort, caFile: target.caFile)
            }
            guard target.usesDANE, case .hosts(let hosts) = MXPlan.plan(for: domain, answer, shuffle: { $0 }) else {
                return (answer, sts, [])
            }
            guard (try? answer.get())?.authenticated == true else {
                return (answer, sts, ["the MX answer is not DNSSEC-validated: no TLSA lookup"])
            }
            var dane: [String] = []
            for host in hosts {
                let (_, security, tlsaAsked) = await MXCourier.lookUp(host, port: target.port, mxValidated: true,
                                                                      enforced: sts?.mode == .enforce ? sts : nil,
                                                                      resolver: resolver, loop: loop)
                dane.append("\(host): " + (tlsaAsked ? "" : "addresses not DNSSEC-validated, ") + security.description)
            }
            return (answer, sts, dane)
        }.assumeIsolated().whenComplete { [self] result in
            let (answer, sts, dane) = (try? result.get()) ?? (.failure(.timeout), nil, [])
            switch MXPlan.plan(for: domain, answer, shuffle: { $0 }) {
            case .hosts(let hosts): line("mx", domain, hosts.joined(separator: ", ") + " (in order; equal preferences are shuffled)")
            case .permanent(let reply): line("mx", domain, "bounce: \(reply)")
            case .temporary(let reason): line("mx", domain, "deferred: \(reason)")
            }
            if target.mtaSTS {
                line("mta-sts", domain, sts.map { "\($0.mode.rawValue) (mx: \($0.mx.joined(separator: ", ")); max_age \($0.maxAge))" }
                    ?? "no policy: TLS as configured (\(target.tls.rawValue))")
            }
            for text in dane { line("dane", domain, text) }
            describeMX(domains.dropFirst(), done)
        }
    }

    /// The envelope and headers after the data hook, and each recipient's route.
    private func describe(_ draft: MessageDraft, _ decision: MessageDecision) {
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
}
