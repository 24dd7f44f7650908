import Foundation
import NIOCore
import SMTPCore

/// Receiving a message: DATA and BDAT text into one buffer, the checks,
/// the policy's data and route hooks, the spool, and the reply.
extension SMTPServerHandler {
    func startMessage() {
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

    func take(_ chunk: ByteBuffer) {
        guard var current = message else { return }
        current.chunkValidator.check(chunk)
        current.chunkedSize += chunk.readableBytes
        if current.chunkValidator.violation == nil && current.chunkedSize <= limits.maxMessageSize {
            var chunk = chunk
            messageContent.writeBuffer(&chunk)
        }
        message = current
    }

    func dataEnded(_ completion: DotDataReader.Completion, _ context: ChannelHandlerContext) {
        if let violation = completion.violation { return refuseMessage(violation.reply, context) }
        if completion.exceedsSizeLimit { return refuseMessage(.messageTooBig, context) }
        acceptMessage(context)
    }

    func chunkEnded(last: Bool, refusal: SMTPReply?, _ context: ChannelHandlerContext) {
        mode = .commands
        timer.enter(.commands, at: services.clock.now)
        armTimer(context)
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

    func refuseMessage(_ reply: SMTPReply, _ context: ChannelHandlerContext) {
        stage = "data"
        endMessage(context)
        for action in session.counted(.reply(reply)) { perform(action, context) }
    }

    func endMessage(_ context: ChannelHandlerContext) {
        session.endTransaction()
        message = nil
        messageContent = ByteBuffer()
        if !isClosed {
            mode = .commands
            timer.enter(.commands, at: services.clock.now)
            armTimer(context)
        }
    }

    func acceptMessage(_ context: ChannelHandlerContext) {
        guard let current = message, let transaction = session.transaction else {
            return refuseMessage(.needMail, context)
        }
        let hops = HeaderSection.count(of: "Received", in: messageContent, from: current.traceLength)
        if let loop = MessageAcceptance.loopRefusal(receivedFields: hops, limits: limits) { return refuseMessage(loop, context) }
        if let malformed = MessageAcceptance.headerRefusal(messageContent, from: current.traceLength,
                                                           strict: configuration.strictHeaderSyntax) {
            return refuseMessage(malformed, context)
        }
        let trace = messageContent.getSlice(at: messageContent.readerIndex, length: current.traceLength) ?? ByteBuffer()
        let text = messageContent.getSlice(at: messageContent.readerIndex + current.traceLength,
                                           length: messageContent.readableBytes - current.traceLength) ?? ByteBuffer()
        let draft = MessageDraft(id: current.id, sender: transaction.sender, recipients: transaction.recipients,
                                 content: text, smtpUTF8: transaction.smtpUTF8)
        mode = .consulting
        timer.enter(.waiting, at: services.clock.now)
        policy.decide(draft) { [self] decision in
            guard !isClosed else { return }
            decided(decision, draft: draft, current, transaction, trace: trace, context)
            carryOn(context)
        }
        flush(context)
    }

    /// The data and route hooks decided: refuse, discard, or spool and queue.
    func decided(_ decision: MessageDecision, draft: MessageDraft, _ current: IncomingMessage,
                 _ transaction: SMTPServerSession.Transaction, trace: ByteBuffer, _ context: ChannelHandlerContext) {
        let routed: [RecipientRoute]
        let refused: [RecipientRoute]
        switch MessageAcceptance.outcome(of: decision, size: draft.size) {
        case .refuse(let reply):
            return refuseMessage(reply, context)
        case .disconnect(let reply):
            endMessage(context)
            send(reply)
            return close(context)
        case .discard(let reason):
            return discardMessage(current.id, reason: reason, context)
        case .queue(let accepted, let bounced):
            (routed, refused) = (accepted, bounced)
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
        let signers = dkimSigners(for: routed, draft: draft)
        // A relayed message is held until delivered, by the spool's journal and the relay queue alike:
        // in one buffer of its size, shared by both (the intake's grew by doubling).
        let (spool, loop, message) = (services.spool, context.eventLoop, envelope.needsRelay ? content.compacted() : content)
        let signed: EventLoopFuture<Envelope> = signers.isEmpty ? loop.makeSucceededFuture(envelope)
            : spool.threadPool.runIfActive(eventLoop: loop) { [envelope, draft = draft.dkimSigners.map(\.label)] in
                var signed = envelope
                try signed.sign(message, with: signers, forAll: draft, time: Int(Date().timeIntervalSince1970))
                return signed
            }
        let queue = services.queue
        signed.flatMap { envelope -> EventLoopFuture<(Envelope, delivered: Bool)> in
            let spooled = { @Sendable in spool.store(envelope, content: message, on: loop).map { (envelope, delivered: false) } }
            guard !envelope.needsRelay else { return spooled() }
            // Only maildirs: delivered before the 250; spooled (and retried) when that fails.
            return queue.deliverBeforeAcknowledging(envelope, content: message, on: loop).map { (envelope, delivered: true) }
                .flatMapError { _ in spooled() }
        }
        .assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let (stored, delivered)):
                spooled(stored, content: message, delivered: delivered, result: .success(()), context)
            case .failure(let error):
                spooled(envelope, content: message, delivered: false, result: .failure(error), context)
            }
        }
    }

    /// The signers this message needs: the data hook's, then those of the
    /// smarthosts its recipients are routed to.
    func dkimSigners(for routed: [RecipientRoute], draft: MessageDraft) -> [DKIMSigner] {
        var signers = draft.dkimSigners
        let known = policy.generation.signers
        for route in routed {
            for target in route.targets {
                for label in target.dkimSigners where !signers.contains(where: { $0.label == label }) {
                    if let signer = known[label] { signers.append(signer) }
                }
            }
        }
        return signers
    }

    /// Answers 250 for a message the policy chose not to deliver.
    func discardMessage(_ id: String, reason: String, _ context: ChannelHandlerContext) {
        services.logger.info("discarded", metadata: ["id": "\(id)", "reason": "\(reason)", "client": "\(clientIP)"])
        endMessage(context)
        send(.queued(id))
    }

    /// The spool answered (or the maildirs, for a message `delivered` at
    /// once): on success the message is ours, whatever happens to the
    /// connection now, and a spooled one goes to the delivery queue.
    func spooled(_ envelope: Envelope, content: ByteBuffer, delivered: Bool, result: Result<Void, any Error>,
                 _ context: ChannelHandlerContext) {
        let reply: SMTPReply
        switch result {
        case .success:
            if !delivered { services.queue.enqueue(envelope, content: content) }
            bounceRefusedRecipients(of: envelope, content: content, context)
            messagesQueued += 1
            services.metrics.accepted(bytes: content.readableBytes)
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
        endMessage(context)
        resumeReads(context)
        if case .success = result {
            send(reply)
        } else {
            for action in session.counted(.reply(reply)) { perform(action, context) }
        }
        process(context)
    }

    /// Queues a bounce for the recipients the route hook refused, unless the
    /// message came from the null sender.
    func bounceRefusedRecipients(of envelope: Envelope, content: ByteBuffer, _ context: ChannelHandlerContext) {
        let refused = envelope.refused?.filter { $0.dsn?.wantsFailure ?? true } ?? []
        _ = services.queue.bounces.send(refused, about: envelope, content: content, on: context.eventLoop)
    }
}
