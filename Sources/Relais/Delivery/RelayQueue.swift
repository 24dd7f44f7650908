import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Delivers queued messages whose routes include smarthosts: each recipient
/// through its route's targets in failover order, retried with exponential
/// backoff until `maxAge`, each recipient's state on disk after every
/// attempt, a bounce for the failed ones, and only then is the message
/// removed from the spool. One task per message.
public actor RelayQueue {
    private let spool: Spool
    private let pools: UpstreamPools
    private let schedule: QueueSchedule
    private let hostname: String
    private let bounceRoute: [RouteTarget]
    private let threadPool: NIOThreadPool
    private let loop: any EventLoop
    private let logger: Logger
    private var tasks: [String: Task<Void, Never>] = [:]
    private var flushRequested: Set<String> = []
    /// The sleep of each message waiting for its next attempt; `flush`
    /// cancels them to wake the messages at once.
    private var sleepers: [String: Task<Void, any Error>] = [:]
    /// Where bounces go once spooled (the delivery queue, which picks the
    /// maildir or the relay path); set by the delivery queue at start.
    nonisolated let requeue = NIOLockedValueBox<(@Sendable (Envelope, ByteBuffer) -> Void)?>(nil)

    /// `credentials` gives the password or token of a smarthost from the
    /// current policy.
    init(spool: Spool, schedule: QueueSchedule, hostname: String, bounceRoute: [RouteTarget],
         threadPool: NIOThreadPool, group: any EventLoopGroup, logger: Logger,
         credentials: @escaping @Sendable (Smarthost) async throws -> String) {
        self.spool = spool
        self.pools = UpstreamPools(heloName: hostname, group: group, credentials: credentials)
        self.schedule = schedule
        self.hostname = hostname
        self.bounceRoute = bounceRoute
        self.threadPool = threadPool
        self.loop = group.next()
        self.logger = logger
    }

    /// Starts delivering a spooled message; `content` nil reads it back
    /// when needed; `state` is the saved state after a restart.
    func enqueue(_ envelope: Envelope, content: ByteBuffer?, state: MessageState?) {
        guard tasks[envelope.id] == nil else { return }
        let initial = state ?? MessageState(envelope: envelope)
        tasks[envelope.id] = Task { await self.process(envelope, content: content, state: initial) }
    }

    /// Makes every waiting recipient due now; returns how many messages.
    func flush() -> Int {
        flushRequested.formUnion(tasks.keys)
        for sleeper in sleepers.values { sleeper.cancel() }
        return tasks.count
    }

    /// Stops delivering a message and removes it from the spool.
    func delete(_ id: String) async -> Bool {
        guard let task = tasks.removeValue(forKey: id) else { return false }
        task.cancel()
        sleepers.removeValue(forKey: id)?.cancel()
        await removeFiles(id)
        logger.info("deleted from the queue", metadata: ["id": "\(id)"])
        return true
    }

    public var count: Int { tasks.count }

    private func sleep(_ id: String, until wake: Double) async {
        guard !flushRequested.contains(id) else { return }
        let seconds = max(0, wake - Date().timeIntervalSince1970)
        let sleeper = Task { try await Task.sleep(nanoseconds: UInt64(seconds * 1e9)) }
        sleepers[id] = sleeper
        _ = await sleeper.result
        sleepers[id] = nil
    }

    private func takeFlush(_ id: String) -> Bool {
        flushRequested.remove(id) != nil
    }

    private func finished(_ id: String) {
        tasks[id] = nil
        flushRequested.remove(id)
    }

    // MARK: - Delivering one message

    private func process(_ envelope: Envelope, content initialContent: ByteBuffer?, state initial: MessageState) async {
        var state = initial
        var content = initialContent
        while !Task.isCancelled {
            let now = Date().timeIntervalSince1970
            let flushing = takeFlush(envelope.id)
            let due = state.recipients.indices.filter {
                state.recipients[$0].status == .pending && (flushing || state.recipients[$0].nextAttempt <= now)
            }
            if !due.isEmpty {
                if content == nil { content = await load(envelope.id) }
                if let content {
                    await attempt(due, of: envelope, content: content, state: &state)
                    // A finished message needs no state file: removing it
                    // from the spool (after its bounce) is its record.
                    if !state.isFinished { await save(state, of: envelope.id) }
                } else {
                    for index in due { state.recipients[index].nextAttempt = now + schedule.retryMin }
                }
            }
            if state.isFinished {
                if await finish(envelope, content: content, state: &state) { finished(envelope.id) }
                return
            }
            // Waiting for the next attempt: the content is read back from the
            // spool then, so a long queue does not sit in memory.
            content = nil
            let wake = state.nextAttempt ?? (now + schedule.retryMin)
            await sleep(envelope.id, until: wake)
        }
    }

    private func attempt(_ due: [Int], of envelope: Envelope, content: ByteBuffer, state: inout MessageState) async {
        var groups: [[RouteTarget]: [Int]] = [:]
        for index in due {
            let targets = envelope.route(index) ?? bounceRoute
            groups[targets, default: []].append(index)
        }
        let addresses = state.recipients.map(\.address)
        let results = await withTaskGroup(of: [(Int, RecipientOutcome, String)].self) { group in
            for (targets, indices) in groups {
                let recipients = indices.map { addresses[$0] }
                group.addTask {
                    let (outcomes, target) = await self.deliver(recipients, to: targets, envelope: envelope, content: content)
                    return indices.map { index in (index, outcomes[addresses[index]] ?? .deferred("no result"), target) }
                }
            }
            var all: [(Int, RecipientOutcome, String)] = []
            for await part in group { all.append(contentsOf: part) }
            return all
        }
        let now = Date().timeIntervalSince1970
        let delay = String(format: "%.1fs", now - envelope.receivedAt)
        for (index, outcome, target) in results {
            var recipient = state.recipients[index]
            recipient.attempts += 1
            recipient.lastTarget = target
            let result: String
            switch outcome {
            case .delivered(let reply, let passedOn):
                recipient.status = .delivered
                recipient.lastResult = reply
                if envelope.dsn(index).wantsSuccess && !passedOn {
                    recipient.successNotice = target.hasPrefix("maildir:") ? "delivered" : "relayed"
                }
                result = "delivered"
            case .failed(let reason):
                recipient.status = .failed
                recipient.lastResult = reason
                result = "failed"
            case .deferred(let reason):
                recipient.lastResult = reason
                if now - envelope.receivedAt >= schedule.maxAge {
                    recipient.status = .failed
                    recipient.lastResult = "gave up after \(Int(schedule.maxAge))s in the queue; last: \(reason)"
                    result = "failed"
                } else {
                    recipient.nextAttempt = now + schedule.delay(afterAttempt: recipient.attempts)
                    result = "deferred"
                }
            }
            state.recipients[index] = recipient
            logger.log(level: result == "delivered" ? .info : .warning, "delivery attempt", metadata: [
                "id": "\(envelope.id)", "to": "<\(recipient.address)>", "upstream": "\(target)", "result": "\(result)",
                "reply": "\(recipient.lastResult ?? "")", "delay": "\(delay)", "attempt": "\(recipient.attempts)",
            ])
        }
    }

    /// Tries the targets in order; moves on when an upstream cannot start
    /// the transaction. Returns the outcomes and the target that gave them.
    private nonisolated func deliver(_ recipients: [String], to targets: [RouteTarget], envelope: Envelope,
                                     content: ByteBuffer) async -> ([String: RecipientOutcome], String) {
        var lastReason = "no route"
        for target in targets {
            switch target {
            case .maildir(let path):
                do {
                    try await writeMaildir(path, envelope: envelope, content: content)
                    let outcome = RecipientOutcome.delivered("250 2.0.0 delivered to maildir \(path)", dsnPassedOn: false)
                    return (Dictionary(uniqueKeysWithValues: Set(recipients).map { ($0, outcome) }), target.description)
                } catch {
                    lastReason = "maildir \(path): \(error)"
                }
            case .smarthost(let smarthost):
                var dsn: [String: RecipientDSN] = [:]
                for (index, address) in envelope.recipients.enumerated() where recipients.contains(address) {
                    dsn[address] = envelope.dsn(index)
                }
                let message = OutboundMessage(id: envelope.id, sender: envelope.sender, recipients: recipients,
                                              content: content, smtpUTF8: envelope.smtpUTF8, body: envelope.body,
                                              ret: envelope.ret, envid: envelope.envid, dsn: dsn, headers: smarthost.headers)
                do {
                    // A provider's recipients-per-message limit splits the message.
                    var outcomes: [String: RecipientOutcome] = [:]
                    let size = smarthost.maxRecipients ?? max(recipients.count, 1)
                    for start in stride(from: 0, to: recipients.count, by: size) {
                        var part = message
                        part.recipients = Array(recipients[start..<min(start + size, recipients.count)])
                        outcomes.merge(try await pools.pool(for: smarthost).deliver(part)) { $1 }
                    }
                    return (outcomes, smarthost.name)
                } catch {
                    lastReason = "\(smarthost.name): \(error)"
                    logger.warning("upstream failed; trying the next one", metadata: [
                        "id": "\(envelope.id)", "upstream": "\(smarthost.name)", "reason": "\(error)",
                    ])
                }
            }
        }
        return (Dictionary(uniqueKeysWithValues: Set(recipients).map { ($0, .deferred(lastReason)) }),
                targets.last.map(\.description) ?? "none")
    }

    private nonisolated func writeMaildir(_ path: String, envelope: Envelope, content: ByteBuffer) async throws {
        let hostname = self.hostname
        try await threadPool.runIfActive {
            let maildir = try Maildir(root: path, hostname: hostname)
            if case .failure(let error) = DurableFiles.write([maildir.pendingFile(for: envelope, content: content)])[0] {
                throw error
            }
        }
    }

    // MARK: - Spool files

    private var stateFolder: String { spool.folder.stateFolder }

    private nonisolated func load(_ id: String) async -> ByteBuffer? {
        do {
            return try await threadPool.runIfActive { [spool] in try spool.folder.load(id).1 }
        } catch {
            logger.error("cannot read queued message", metadata: ["id": "\(id)", "error": "\(error)"])
            return nil
        }
    }

    private func save(_ state: MessageState, of id: String) async {
        let folder = stateFolder
        do {
            let bytes = try state.encoded()
            try await threadPool.runIfActive {
                try DurableFiles.makeFolders([folder])
                let file = DurableFiles.PendingFile(temporaryPath: folder + "/." + id, finalPath: folder + "/" + id, contents: [bytes])
                if case .failure(let error) = DurableFiles.write([file])[0] { throw error }
            }
        } catch {
            logger.error("cannot save delivery state", metadata: ["id": "\(id)", "error": "\(error)"])
        }
    }

    /// Bounces the failed recipients (durably queued first), then forgets
    /// the message. Returns false when the bounce could not be queued (the
    /// message stays and finishing is tried again on the next start).
    private func finish(_ envelope: Envelope, content: ByteBuffer?, state: inout MessageState) async -> Bool {
        var reports: [RefusedRecipient] = []
        for (index, recipient) in state.recipients.enumerated() {
            let dsn = envelope.dsn(index)
            if recipient.status == .failed && dsn.wantsFailure {
                reports.append(RefusedRecipient(recipient: recipient.address, reply: recipient.lastResult ?? "failed", dsn: dsn))
            } else if let notice = recipient.successNotice {
                reports.append(RefusedRecipient(recipient: recipient.address, reply: recipient.lastResult ?? "delivered",
                                                dsn: dsn, action: notice))
            }
        }
        if !reports.isEmpty && !envelope.sender.isEmpty && !state.bounced {
            var original = content
            if original == nil { original = await load(envelope.id) }
            let bounce = BounceMessage(
                hostname: hostname, original: envelope, originalContent: original ?? ByteBuffer(),
                failures: reports,
                id: QueueID.make(), time: Int(Date().timeIntervalSince1970))
            var bounceEnvelope = bounce.envelope
            bounceEnvelope.routes = [bounceRoute]
            let bounceContent = bounce.content
            do {
                try await spool.store(bounceEnvelope, content: bounceContent, on: loop).get()
            } catch {
                logger.error("cannot queue bounce; the message stays queued", metadata: ["id": "\(envelope.id)", "error": "\(error)"])
                return false
            }
            logger.info("bounce queued", metadata: ["id": "\(bounceEnvelope.id)", "original": "\(envelope.id)",
                                                    "to": "<\(envelope.sender)>", "recipients": "\(reports.count)"])
            state.bounced = true
            await save(state, of: envelope.id)
            requeue.withLockedValue { $0 }?(bounceEnvelope, bounceContent)
        }
        await removeFiles(envelope.id)
        return true
    }

    private func removeFiles(_ id: String) async {
        let statePath = stateFolder + "/" + id
        let spool = self.spool
        _ = try? await threadPool.runIfActive {
            _ = spool.remove(id)
            unlink(statePath)
        }
    }
}
