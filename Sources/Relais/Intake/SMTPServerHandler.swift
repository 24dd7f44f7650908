import Foundation
import Logging
import NIOCore
import RelaisTLS
import SMTPCore

/// Asks a connection to finish its transaction in flight and then close;
/// sent to every connection on a graceful stop.
struct DrainConnectionEvent: Sendable {}

/// What every connection shares: the policy, spool, queue, limits, log.
struct ServerServices: Sendable {
    var store: PolicyStore
    var timings: HookTimings
    var spool: Spool
    var queue: DeliveryQueue
    var tracker: ConnectionTracker
    var logger: Logger
    var metrics: RelayMetrics
    var clock: any ConnectionClock = SystemClock()
}

/// The channel handler of one SMTP connection. It frames the byte stream
/// (commands, DATA text, BDAT chunks), feeds commands to the
/// `SMTPServerSession` state machine and carries out its actions: replies
/// (batched per read, as PIPELINING wants), spooling, timeouts and closing.
final class SMTPServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum InputMode {
        /// The greeting is held back; any byte now marks an early talker.
        case awaitingGreeting
        case commands
        case data(DotDataReader)
        case chunk(remaining: Int, last: Bool, refusal: SMTPReply?)
        /// The spool is making the message durable, or the client is made to
        /// wait after a failed authentication; input waits.
        case waiting
        /// A policy hook is deciding (it may wait on DNS, HTTP or Redis);
        /// input waits.
        case consulting
        case closed
    }

    /// The message being received: its queue id, and where the client's
    /// text starts after our `Received:` header.
    struct IncomingMessage {
        var id: String
        var receivedAt: Date
        var traceLength: Int
        var chunkValidator: ChunkTextValidator
        var chunkedSize = 0
    }

    let services: ServerServices
    let clientIP: String
    let clientPort: Int
    let policy: ConnectionPolicy
    var session: SMTPServerSession
    var mode: InputMode = .commands
    var framer: CommandLineFramer
    var input = ByteBuffer()
    var output = ByteBuffer()
    var message: IncomingMessage?
    /// Kept apart from `message` so that appending never copies it.
    var messageContent = ByteBuffer()
    /// The greeting delay, idle limits and pauses; `check` carries out what
    /// falls due, armed for `timer.nextCheck`.
    var timer: ConnectionTimer
    var check: (deadline: NIODeadline, task: Scheduled<Void>)?
    var draining = false
    var admitted = false
    /// The stage of the command being answered (`mail`, `rcpt`, `data`, ...).
    var stage = "connect"
    var messagesQueued = 0
    let connectedAt: NIODeadline
    /// `process` is running: an answer that arrives now is carried out by
    /// its loop, one that arrives later starts it again.
    var processing = false
    /// Reading was stopped while a hook waits, so input cannot pile up.
    var readsPaused = false

    init(services: ServerServices, channel: any Channel) {
        self.services = services
        let remote = channel.remoteAddress
        let local = channel.localAddress
        self.clientIP = remote?.ipAddress ?? "unknown"
        self.clientPort = remote?.port ?? 0
        let info = SessionInfo(id: QueueID.make(), remoteIP: clientIP, remotePort: clientPort,
                               localIP: local?.ipAddress ?? "", localPort: local?.port ?? 0, relayAllowed: false)
        self.policy = ConnectionPolicy(store: services.store, loop: channel.eventLoop, info: info,
                                       timings: services.timings, logger: services.logger)
        self.session = SMTPServerSession(policy: policy)
        self.framer = CommandLineFramer(maxLength: SMTPLimits().commandLineLength)
        let now = services.clock.now
        self.connectedAt = now
        let configuration = policy.configuration
        self.timer = ConnectionTimer(now: now, greetingDelay: policy.relayAllowed ? nil : configuration.greetingDelay,
                                     commandTimeout: configuration.commandTimeout, dataTimeout: configuration.dataTimeout,
                                     maxDataTime: configuration.maxDataTime, maxSessionTime: configuration.maxSessionTime)
    }

    var configuration: ServerConfiguration { policy.configuration }
    var limits: SMTPLimits { policy.limits }

    // MARK: - Channel events

    func channelActive(context: ChannelHandlerContext) {
        if let refusal = services.tracker.admit(context.channel, ip: clientIP, exempt: policy.relayAllowed) {
            services.metrics.connectionRefused("limit")
            services.logger.warning("connection refused", metadata: ["client": "\(clientIP)", "reason": "\(refusal.text)"])
            send(refusal)
            close(context)
            return
        }
        admitted = true
        services.metrics.connectionOpened()
        mode = .consulting
        policy.connect { [self] verdict in
            guard !isClosed else { return }
            if let refusal = verdict?.refusal {
                services.metrics.connectionRefused("policy")
                services.logger.info("connection refused by policy", metadata: ["client": "\(clientIP)", "reply": "\(refusal)"])
                send(refusal)
                close(context)
                return
            }
            if case .greeting = timer.phase {
                mode = .awaitingGreeting
                armTimer(context)
            } else {
                greet(context)
            }
            resumeReads(context)
        }
        pauseReadsIfConsulting(context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        timer.received(bytes.readableBytes, at: services.clock.now)
        switch mode {
        case .closed:
            return
        case .awaitingGreeting:
            services.logger.info("early talker refused", metadata: ["client": "\(clientIP)"])
            services.metrics.connectionRefused("early_talker")
            mode = .commands
            send(.earlyTalker)
            close(context)
            return
        default:
            break
        }
        if input.readableBytes == 0 {
            input = bytes
        } else {
            input.writeBuffer(&bytes)
        }
        if isWaiting && input.readableBytes > Self.inputHeldWhileWaiting { pauseReads(context) }
        process(context)
        // An idle connection holds no read buffer (reads are 4 KiB at least).
        if input.readableBytes == 0 { input = ByteBuffer() }
    }

    /// What a client may send while its message waits for the data hook
    /// and the spool before reading stops: nearly every client waits for
    /// the reply, so stopping up front would cost a pause and a resume per
    /// message for nothing.
    static let inputHeldWhileWaiting = 64 * 1024

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let handshake = event as? TLSHandshakeCompleted {
            policy.tlsEstablished(version: handshake.protocolVersion, cipher: handshake.cipher)
            return
        }
        guard event is DrainConnectionEvent else { return context.fireUserInboundEventTriggered(event) }
        draining = true
        closeIfDrained(context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        mode = .closed
        disarmTimer()
        policy.detach()
        if admitted {
            services.tracker.release(context.channel, ip: clientIP)
            services.metrics.connectionClosed()
            let seconds = Double((services.clock.now - connectedAt).nanoseconds) / 1e9
            services.logger.info("connection closed", metadata: [
                "session": "\(policy.info.id)", "client": "\(clientIP):\(clientPort)", "helo": "\(session.helo ?? "")",
                "queued": "\(messagesQueued)", "errors": "\(session.errorCount)",
                "duration": "\(String(format: "%.3f", seconds))s",
            ])
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        services.logger.debug("connection error", metadata: ["client": "\(clientIP)", "error": "\(error)"])
        mode = .closed
        context.close(promise: nil)
    }

    // MARK: - Input

    func greet(_ context: ChannelHandlerContext) {
        mode = .commands
        send(session.greeting)
        closeIfDrained(context)
        flush(context)
        armTimer(context)
    }

    /// Consumes as much buffered input as the current mode allows, then sends
    /// the replies gathered on the way in one write.
    func process(_ context: ChannelHandlerContext) {
        processing = true
        defer { processing = false }
        loop: while true {
            switch mode {
            case .commands:
                guard let frame = framer.next(&input) else { break loop }
                timer.commandCompleted(at: services.clock.now)
                if case .line(let line) = frame {
                    stage = Self.stage(of: line)
                    if let refusal = pipeliningRefusal(after: line) {
                        services.logger.info("refused pipelining before a reply", metadata: [
                            "client": "\(clientIP)", "command": "\(line.prefix(4).uppercased())", "bytes": "\(input.readableBytes)"])
                        countRefusal(refusal)
                        send(refusal)
                        close(context)
                        break loop
                    }
                }
                for action in session.handle(frame) { perform(action, context) }
            case .data(var reader):
                guard input.readableBytes > 0 else { break loop }
                let completion = reader.consume(&input, into: &messageContent)
                mode = .data(reader)
                if let completion { dataEnded(completion, context) }
            case .chunk(let remaining, let last, let refusal):
                guard remaining == 0 || input.readableBytes > 0 else { break loop }
                let taken = min(remaining, input.readableBytes)
                if let chunk = input.readSlice(length: taken), refusal == nil { take(chunk) }
                mode = .chunk(remaining: remaining - taken, last: last, refusal: refusal)
                if remaining == taken { chunkEnded(last: last, refusal: refusal, context) }
            case .awaitingGreeting, .waiting, .consulting, .closed:
                break loop
            }
        }
        if input.readableBytes == 0 { input.clear() }
        closeIfDrained(context)
        flush(context)
    }

    func perform(_ action: SMTPServerSession.Action, _ context: ChannelHandlerContext) {
        guard !isClosed else { return }
        switch action {
        case .reply(let reply):
            countRefusal(reply)
            send(reply)
        case .close(let reply):
            countRefusal(reply)
            send(reply)
            close(context)
        case .receiveData(let reply):
            send(reply)
            startMessage()
            mode = .data(DotDataReader(limits: limits))
            timer.enter(.message, at: services.clock.now)
            armTimer(context)
        case .receiveChunk(let size, let last, let refusal):
            if refusal == nil && message == nil { startMessage() }
            mode = .chunk(remaining: size, last: last, refusal: refusal)
            timer.enter(.message, at: services.clock.now)
            armTimer(context)
        case .startTLS(let reply):
            startTLS(reply, context)
        case .pause(let seconds):
            pause(seconds, context)
        case .consult(let question):
            consult(question, context)
        }
    }

    /// Asks the policy; input waits for the answer, which carries the
    /// session on (at once when no hook waits).
    func consult(_ question: PolicyQuestion, _ context: ChannelHandlerContext) {
        mode = .consulting
        policy.ask(question) { [self] answer in
            guard !isClosed else { return }
            mode = .commands
            for action in session.answer(question, answer) { perform(action, context) }
            carryOn(context)
        }
        pauseReadsIfConsulting(context)
    }

    /// After an answer: a loop already running goes on by itself; otherwise
    /// reading resumes and buffered input is processed.
    func carryOn(_ context: ChannelHandlerContext) {
        guard !processing else { return }
        resumeReads(context)
        process(context)
    }

    /// A hook is waiting: stop reading until it answers.
    func pauseReadsIfConsulting(_ context: ChannelHandlerContext) {
        if case .consulting = mode { pauseReads(context) }
    }

    /// The relay waits (a hook, the spool): send what is gathered and stop
    /// reading, so that input cannot pile up meanwhile.
    func pauseReads(_ context: ChannelHandlerContext) {
        guard !readsPaused else { return }
        readsPaused = true
        flush(context)
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
    }

    /// Reads again, unless the relay still waits (a hook that answered
    /// handed the message to the spool).
    func resumeReads(_ context: ChannelHandlerContext) {
        guard readsPaused, !isWaiting else { return }
        readsPaused = false
        context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
    }

    var isWaiting: Bool {
        switch mode {
        case .waiting, .consulting: true
        default: false
        }
    }

    /// RFC 3207: the 220 goes out in plaintext, then TLS starts. Anything
    /// the client pipelined behind STARTTLS is discarded, never run inside
    /// the encrypted session (the command injection of CVE-2011-0411).
    func startTLS(_ reply: SMTPReply, _ context: ChannelHandlerContext) {
        guard let tlsContext = policy.generation.tlsContext else { return send(.commandUnavailable) }
        send(reply)
        flush(context)
        if input.readableBytes > 0 {
            services.logger.info("discarded input pipelined after STARTTLS",
                                 metadata: ["client": "\(clientIP)", "bytes": "\(input.readableBytes)"])
        }
        input.clear()
        framer = CommandLineFramer(maxLength: SMTPLimits().commandLineLength)
        do {
            try context.pipeline.syncOperations.addHandler(try TLSHandler(context: tlsContext), position: .first)
        } catch {
            services.logger.error("cannot start TLS", metadata: ["client": "\(clientIP)", "error": "\(error)"])
            close(context)
        }
    }

    /// Stops reading for a while (a failed authentication slows the client).
    func pause(_ seconds: Int, _ context: ChannelHandlerContext) {
        mode = .waiting
        flush(context)
        let now = services.clock.now
        timer.enter(.paused(until: now + .seconds(Int64(seconds))), at: now)
        armTimer(context)
    }

    /// Postfix's `smtpd_forbid_unauth_pipelining`: a client that may not
    /// relay and sent more bytes behind a command after which RFC 2920
    /// forbids pipelining (EHLO, HELO, DATA, AUTH) is refused before the
    /// command is answered, so that message text sent before the 354 is
    /// never read as a message. Trusted clients pipeline freely.
    func pipeliningRefusal(after line: String) -> SMTPReply? {
        guard !policy.relayAllowed, input.readableBytes > 0 else { return nil }
        let verb = line.prefix(4).uppercased()
        guard ["EHLO", "HELO", "DATA", "AUTH"].contains(verb), line.count == 4 || line.dropFirst(4).first == " " else { return nil }
        return SMTPReply(554, EnhancedStatusCode(5, 5, 0), "Error: command pipelining before \(verb) reply")
    }

    /// The stage a command line belongs to, for the refusal metric.
    static func stage(of line: String) -> String {
        switch line.prefix(4).uppercased() {
        case "HELO", "EHLO": return "helo"
        case "MAIL": return "mail"
        case "RCPT": return "rcpt"
        case "DATA", "BDAT": return "data"
        case "AUTH": return "auth"
        default: return "command"
        }
    }

    func countRefusal(_ reply: SMTPReply) {
        if reply.code >= 400 { services.metrics.refused(at: stage, code: reply.code) }
    }

    var isClosed: Bool {
        if case .closed = mode { return true }
        return false
    }

    // MARK: - Output and lifetime

    func send(_ reply: SMTPReply) {
        reply.write(into: &output)
    }

    func flush(_ context: ChannelHandlerContext) {
        guard output.readableBytes > 0 else { return }
        context.writeAndFlush(wrapOutboundOut(output), promise: nil)
        // Written already in the common case, so the storage is ours again: the next replies reuse it.
        output.clear()
    }

    func close(_ context: ChannelHandlerContext) {
        mode = .closed
        timer.enter(.closed, at: services.clock.now)
        disarmTimer()
        let pending = output
        output = ByteBuffer()
        context.writeAndFlush(wrapOutboundOut(pending)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// During a graceful stop, a connection with no transaction in flight is
    /// told so and closed.
    func closeIfDrained(_ context: ChannelHandlerContext) {
        guard draining, case .commands = mode, session.transaction == nil else { return }
        send(.shuttingDown)
        close(context)
    }

    /// Makes sure a check runs at `timer.nextCheck` (a check armed for
    /// later is moved earlier; one armed earlier finds nothing due and arms
    /// again, so input never reschedules the timer).
    func armTimer(_ context: ChannelHandlerContext) {
        guard let deadline = timer.nextCheck else { return disarmTimer() }
        if let check, check.deadline <= deadline { return }
        check?.task.cancel()
        let task = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            self.check = nil
            runTimer(context)
        }
        check = (deadline, task)
    }

    func disarmTimer() {
        check?.task.cancel()
        check = nil
    }

    /// Carries out what the timer says is due, then arms it again.
    func runTimer(_ context: ChannelHandlerContext) {
        switch timer.due(at: services.clock.now) {
        case .greet?:
            greet(context)
        case .resume?:
            mode = .commands
            process(context)
        case .timeout?:
            services.logger.info("timeout", metadata: ["client": "\(clientIP)"])
            send(.timeout)
            close(context)
        case nil:
            break
        }
        armTimer(context)
    }
}
