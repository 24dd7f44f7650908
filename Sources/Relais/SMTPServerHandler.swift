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
}

/// The channel handler of one SMTP connection. It frames the byte stream
/// (commands, DATA text, BDAT chunks), feeds commands to the
/// `SMTPServerSession` state machine and carries out its actions: replies
/// (batched per read, as PIPELINING wants), spooling, timeouts and closing.
final class SMTPServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum InputMode {
        /// The greeting is held back; any byte now marks an early talker.
        case awaitingGreeting
        case commands
        case data(DotDataReader)
        case chunk(remaining: Int, last: Bool, refusal: SMTPReply?)
        /// The spool is making the message durable, or the client is made to
        /// wait after a failed authentication; input waits.
        case waiting
        case closed
    }

    /// The message being received: its queue id, and where the client's
    /// text starts after our `Received:` header.
    private struct IncomingMessage {
        var id: String
        var receivedAt: Date
        var traceLength: Int
        var chunkValidator: ChunkTextValidator
        var chunkedSize = 0
    }

    private let services: ServerServices
    private let clientIP: String
    private let clientPort: Int
    private let policy: ConnectionPolicy
    private var session: SMTPServerSession
    private var mode: InputMode = .commands
    private var framer: CommandLineFramer
    private var input = ByteBuffer()
    private var output = ByteBuffer()
    private var message: IncomingMessage?
    /// Kept apart from `message` so that appending never copies it.
    private var messageContent = ByteBuffer()
    private var lastActivity = NIODeadline.now()
    private var timeoutCheck: Scheduled<Void>?
    private var draining = false
    private var admitted = false
    private var messagesQueued = 0
    private let connectedAt = NIODeadline.now()

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
    }

    private var configuration: ServerConfiguration { policy.configuration }
    private var limits: SMTPLimits { policy.limits }

    // MARK: - Channel events

    func channelActive(context: ChannelHandlerContext) {
        if let refusal = services.tracker.admit(context.channel, ip: clientIP, exempt: policy.relayAllowed) {
            services.logger.warning("connection refused", metadata: ["client": "\(clientIP)", "reason": "\(refusal.text)"])
            send(refusal)
            close(context)
            return
        }
        admitted = true
        if let verdict = policy.connect(), let refusal = verdict.refusal {
            services.logger.info("connection refused by policy", metadata: ["client": "\(clientIP)", "reply": "\(refusal)"])
            send(refusal)
            close(context)
            return
        }
        scheduleTimeoutCheck(context, in: checkInterval)
        if configuration.greetingDelay > .zero && !policy.relayAllowed {
            mode = .awaitingGreeting
            context.eventLoop.assumeIsolated().scheduleTask(in: configuration.greetingDelay) { [self] in
                guard case .awaitingGreeting = mode else { return }
                greet(context)
            }
        } else {
            greet(context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        lastActivity = .now()
        switch mode {
        case .closed:
            return
        case .awaitingGreeting:
            services.logger.info("early talker refused", metadata: ["client": "\(clientIP)"])
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
        process(context)
    }

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
        timeoutCheck?.cancel()
        policy.detach()
        if admitted {
            services.tracker.release(context.channel, ip: clientIP)
            let seconds = Double((NIODeadline.now() - connectedAt).nanoseconds) / 1e9
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

    private func greet(_ context: ChannelHandlerContext) {
        mode = .commands
        send(session.greeting)
        closeIfDrained(context)
        flush(context)
    }

    /// Consumes as much buffered input as the current mode allows, then sends
    /// the replies gathered on the way in one write.
    private func process(_ context: ChannelHandlerContext) {
        loop: while true {
            switch mode {
            case .commands:
                guard let frame = framer.next(&input) else { break loop }
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
            case .awaitingGreeting, .waiting, .closed:
                break loop
            }
        }
        if input.readableBytes == 0 { input.clear() }
        closeIfDrained(context)
        flush(context)
    }

    private func perform(_ action: SMTPServerSession.Action, _ context: ChannelHandlerContext) {
        guard !isClosed else { return }
        switch action {
        case .reply(let reply):
            send(reply)
        case .close(let reply):
            send(reply)
            close(context)
        case .receiveData(let reply):
            send(reply)
            startMessage()
            mode = .data(DotDataReader(limits: limits))
        case .receiveChunk(let size, let last, let refusal):
            if refusal == nil && message == nil { startMessage() }
            mode = .chunk(remaining: size, last: last, refusal: refusal)
        case .startTLS(let reply):
            startTLS(reply, context)
        case .pause(let seconds):
            pause(seconds, context)
        }
    }

    /// RFC 3207: the 220 goes out in plaintext, then TLS starts. Anything
    /// the client pipelined behind STARTTLS is discarded, never run inside
    /// the encrypted session (the command injection of CVE-2011-0411).
    private func startTLS(_ reply: SMTPReply, _ context: ChannelHandlerContext) {
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
    private func pause(_ seconds: Int, _ context: ChannelHandlerContext) {
        mode = .waiting
        flush(context)
        context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(Int64(seconds))) { [self] in
            guard case .waiting = mode else { return }
            mode = .commands
            process(context)
        }
    }

    private var isClosed: Bool {
        if case .closed = mode { return true }
        return false
    }

    // MARK: - Messages

    private func startMessage() {
        let id = QueueID.make()
        let now = Date()
        let transaction = session.transaction
        let recipients = transaction?.recipients ?? []
        let tls = policy.info.tls
        let protocolName = (!session.usedEHLO ? "SMTP" : (transaction?.smtpUTF8 == true ? "UTF8SMTP" : "ESMTP"))
            + (tls ? "S" : "") + (policy.isAuthenticated && session.usedEHLO ? "A" : "")
        let trace = ReceivedHeader(
            helo: session.helo ?? "", clientIP: clientIP, hostname: configuration.hostname,
            tls: tls ? "\(policy.info.tlsVersion ?? "TLS") with cipher \(policy.info.tlsCipher ?? "unknown")" : nil,
            protocolName: protocolName, queueID: id,
            recipient: recipients.count == 1 ? recipients[0].description : nil, time: Int(now.timeIntervalSince1970)
        ).text
        let expected = min(transaction?.declaredSize ?? 16 * 1024, limits.maxMessageSize)
        messageContent = ByteBufferAllocator().buffer(capacity: trace.utf8.count + expected + 64)
        messageContent.writeString(trace)
        message = IncomingMessage(id: id, receivedAt: now, traceLength: messageContent.readableBytes,
                                  chunkValidator: ChunkTextValidator(limits: limits))
    }

    private func take(_ chunk: ByteBuffer) {
        guard var current = message else { return }
        current.chunkValidator.check(chunk)
        current.chunkedSize += chunk.readableBytes
        if current.chunkValidator.violation == nil && current.chunkedSize <= limits.maxMessageSize {
            var chunk = chunk
            messageContent.writeBuffer(&chunk)
        }
        message = current
    }

    private func dataEnded(_ completion: DotDataReader.Completion, _ context: ChannelHandlerContext) {
        if let violation = completion.violation { return refuseMessage(violation.reply, context) }
        if completion.exceedsSizeLimit { return refuseMessage(.messageTooBig, context) }
        acceptMessage(context)
    }

    private func chunkEnded(last: Bool, refusal: SMTPReply?, _ context: ChannelHandlerContext) {
        mode = .commands
        if let refusal {
            for action in session.counted(.reply(refusal)) { perform(action, context) }
            return
        }
        guard var current = message else { return }
        if last { current.chunkValidator.finish() }
        message = current
        if let violation = current.chunkValidator.violation { return refuseMessage(violation.reply, context) }
        if current.chunkedSize > limits.maxMessageSize { return refuseMessage(.messageTooBig, context) }
        if last {
            acceptMessage(context)
        } else {
            send(.chunkReceived(current.chunkedSize))
        }
    }

    private func refuseMessage(_ reply: SMTPReply, _ context: ChannelHandlerContext) {
        endMessage()
        for action in session.counted(.reply(reply)) { perform(action, context) }
    }

    private func endMessage() {
        session.endTransaction()
        message = nil
        messageContent = ByteBuffer()
        if !isClosed { mode = .commands }
    }

    private func acceptMessage(_ context: ChannelHandlerContext) {
        guard let current = message, let transaction = session.transaction else {
            return refuseMessage(.needMail, context)
        }
        let hops = HeaderSection.count(of: "Received", in: messageContent, from: current.traceLength)
        guard hops <= limits.maxReceivedHeaders else { return refuseMessage(.mailLoop, context) }
        let trace = messageContent.getSlice(at: messageContent.readerIndex, length: current.traceLength) ?? ByteBuffer()
        let text = messageContent.getSlice(at: messageContent.readerIndex + current.traceLength,
                                           length: messageContent.readableBytes - current.traceLength) ?? ByteBuffer()
        let draft = MessageDraft(id: current.id, sender: transaction.sender, recipients: transaction.recipients,
                                 content: text, smtpUTF8: transaction.smtpUTF8)
        let decision = policy.decide(draft)
        switch decision.verdict {
        case .reject(let reply), .tempfail(let reply):
            return refuseMessage(reply, context)
        case .disconnect(let reply):
            endMessage()
            send(reply)
            return close(context)
        case .discard:
            return discardMessage(current.id, reason: "discarded by the data hook", context)
        case .accept, nil:
            break
        }
        let routed = decision.routes.filter { $0.refusal == nil }
        let refused = decision.routes.filter { $0.refusal != nil }
        if decision.routes.isEmpty { return discardMessage(current.id, reason: "the data hook removed every recipient", context) }
        // A recipient the route hook deferred (or a failed hook) defers the
        // whole message: it cannot be retried on its own after the 250.
        if let deferred = refused.first(where: { ($0.refusal?.code ?? 500) < 500 }) {
            return refuseMessage(deferred.refusal ?? PolicyVerdict.hookFailed, context)
        }
        guard !routed.isEmpty else { return refuseMessage(refused.first?.refusal ?? PolicyVerdict.hookFailed, context) }
        // A provider's size limit refuses the message now rather than bouncing it later.
        for route in routed {
            guard case .smarthost(let smarthost)? = route.targets.first, let limit = smarthost.maxMessageSize,
                  text.readableBytes > limit else { continue }
            return refuseMessage(SMTPReply(552, EnhancedStatusCode(5, 3, 4),
                                           "Error: message too big for \(smarthost.name) (\(limit) bytes at most)"), context)
        }
        var content = messageContent
        if draft.headersChanged {
            content = ByteBufferAllocator().buffer(capacity: messageContent.readableBytes + 256)
            var traceBytes = trace
            content.writeBuffer(&traceBytes)
            draft.headers.write(into: &content)
        }
        var envelope = Envelope(
            id: current.id, sender: draft.sender.description,
            recipients: routed.map(\.recipient.description), smtpUTF8: transaction.smtpUTF8,
            body: transaction.parameters["BODY"]?.uppercased(), receivedAt: current.receivedAt.timeIntervalSince1970,
            clientIP: clientIP, helo: session.helo ?? "", routes: routed.map(\.targets),
            refused: refused.map { RefusedRecipient(recipient: $0.recipient.description, reply: $0.refusal?.description ?? "",
                                                    dsn: transaction.recipientDSN[$0.recipient]) }
        )
        envelope.ret = transaction.parameters["RET"]?.uppercased()
        envelope.envid = transaction.parameters["ENVID"]
        let dsn = routed.map { transaction.recipientDSN[$0.recipient] ?? RecipientDSN() }
        if dsn.contains(where: { $0 != RecipientDSN() }) { envelope.recipientDSN = dsn }
        mode = .waiting
        flush(context)
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        services.spool.store(envelope, content: content, on: context.eventLoop).assumeIsolated().whenComplete { [self] result in
            spooled(envelope, content: content, result: result, context)
        }
    }

    /// Answers 250 for a message the policy chose not to deliver.
    private func discardMessage(_ id: String, reason: String, _ context: ChannelHandlerContext) {
        services.logger.info("discarded", metadata: ["id": "\(id)", "reason": "\(reason)", "client": "\(clientIP)"])
        endMessage()
        send(.queued(id))
    }

    /// The spool answered: on success the message is ours, whatever happens to
    /// the connection now, and goes to the delivery queue.
    private func spooled(_ envelope: Envelope, content: ByteBuffer, result: Result<Void, any Error>, _ context: ChannelHandlerContext) {
        let reply: SMTPReply
        switch result {
        case .success:
            services.queue.enqueue(envelope, content: content)
            bounceRefusedRecipients(of: envelope, content: content, context)
            messagesQueued += 1
            services.logger.info("queued", metadata: [
                "id": "\(envelope.id)", "from": "<\(envelope.sender)>", "recipients": "\(envelope.recipients.count)",
                "size": "\(content.readableBytes)", "client": "\(clientIP)",
            ])
            reply = .queued(envelope.id)
        case .failure(let error):
            services.logger.error("cannot spool message", metadata: ["id": "\(envelope.id)", "error": "\(error)"])
            reply = (error as? SystemCallError)?.isOutOfSpace == true ? .spoolFull : .spoolFailed
        }
        guard !isClosed else { return }
        endMessage()
        context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
        if case .success = result {
            send(reply)
        } else {
            for action in session.counted(.reply(reply)) { perform(action, context) }
        }
        process(context)
    }

    /// Queues a bounce for the recipients the route hook refused, unless the
    /// message came from the null sender.
    private func bounceRefusedRecipients(of envelope: Envelope, content: ByteBuffer, _ context: ChannelHandlerContext) {
        guard let refused = envelope.refused?.filter({ $0.dsn?.wantsFailure ?? true }), !refused.isEmpty,
              !envelope.sender.isEmpty else { return }
        let bounce = BounceMessage(hostname: configuration.hostname, original: envelope, originalContent: content,
                                   failures: refused, id: QueueID.make(), time: Int(Date().timeIntervalSince1970))
        var routedBounce = bounce.envelope
        routedBounce.routes = [configuration.effectiveDefaultRoute]
        let bounceEnvelope = routedBounce
        let bounceContent = bounce.content
        let logger = services.logger
        let queue = services.queue
        services.spool.store(bounceEnvelope, content: bounceContent, on: context.eventLoop).whenComplete { result in
            switch result {
            case .success:
                logger.info("bounce queued", metadata: ["id": "\(bounceEnvelope.id)", "original": "\(envelope.id)",
                                                        "to": "<\(envelope.sender)>", "recipients": "\(refused.count)"])
                queue.enqueue(bounceEnvelope, content: bounceContent)
            case .failure(let error):
                logger.error("cannot queue bounce", metadata: ["original": "\(envelope.id)", "error": "\(error)"])
            }
        }
    }

    // MARK: - Output and lifetime

    private func send(_ reply: SMTPReply) {
        reply.write(into: &output)
    }

    private func flush(_ context: ChannelHandlerContext) {
        guard output.readableBytes > 0 else { return }
        context.writeAndFlush(wrapOutboundOut(output), promise: nil)
        output = ByteBuffer()
    }

    private func close(_ context: ChannelHandlerContext) {
        mode = .closed
        timeoutCheck?.cancel()
        let pending = output
        output = ByteBuffer()
        context.writeAndFlush(wrapOutboundOut(pending)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// During a graceful stop, a connection with no transaction in flight is
    /// told so and closed.
    private func closeIfDrained(_ context: ChannelHandlerContext) {
        guard draining, case .commands = mode, session.transaction == nil else { return }
        send(.shuttingDown)
        close(context)
    }

    private func scheduleTimeoutCheck(_ context: ChannelHandlerContext, in delay: TimeAmount) {
        timeoutCheck = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            checkTimeout(context)
        }
    }

    /// Checks come at least this often, so a switch between command and
    /// data mode is noticed whichever timeout is shorter.
    private var checkInterval: TimeAmount { min(configuration.commandTimeout, configuration.dataTimeout) }

    private func checkTimeout(_ context: ChannelHandlerContext) {
        let limit: TimeAmount
        switch mode {
        case .closed: return
        case .waiting: return scheduleTimeoutCheck(context, in: checkInterval)
        case .data, .chunk: limit = configuration.dataTimeout
        case .commands, .awaitingGreeting: limit = configuration.commandTimeout
        }
        let idle = NIODeadline.now() - lastActivity
        guard idle >= limit else { return scheduleTimeoutCheck(context, in: min(limit - idle, checkInterval)) }
        services.logger.info("timeout", metadata: ["client": "\(clientIP)"])
        send(.timeout)
        close(context)
    }
}
