import Foundation
import Logging
import NIOCore
import NIOPosix

/// Delivers queued messages whose routes include smarthosts: each recipient
/// through its route's targets in failover order, by their couriers,
/// retried with exponential backoff until `maxAge`, each recipient's state
/// on disk after every attempt, a bounce for the failed ones, and only then
/// is the message removed from the spool. One task per message.
public actor RelayQueue {
    private let spool: Spool
    private let couriers: Couriers
    private let bounces: BounceSender
    private let schedule: QueueSchedule
    /// The route of messages queued before routes were stored.
    private let defaultRoute: [RouteTarget]
    private let threadPool: NIOThreadPool
    private let loop: any EventLoop
    private let metrics: RelayMetrics?
    private let logger: Logger
    private var tasks: [String: Task<Void, Never>] = [:]
    private var flushRequested: Set<String> = []
    /// Messages an operator asked to bounce now.
    private var bounceRequested: Set<String> = []
    /// The smarthosts each message's routes name, for flushing one upstream.
    private var upstreams: [String: Set<String>] = [:]
    /// The sleep of each message waiting for its next attempt; `flush`
    /// cancels them to wake the messages at once.
    private var sleepers: [String: Task<Void, any Error>] = [:]
    /// Messages in an attempt at most. The others wait their turn before
    /// their content is read, so a long queue that falls due at once (an
    /// upstream back after an outage, a flush) is not read into memory at
    /// once; far more than the upstreams' connections would not go faster.
    static let maxAttemptsAtOnce = 1000
    private var attempting = 0
    /// Messages waiting for a turn, first come first served from `turnHead`.
    private var turnQueue: [CheckedContinuation<Void, Never>] = []
    private var turnHead = 0

    init(spool: Spool, couriers: Couriers, bounces: BounceSender, schedule: QueueSchedule, defaultRoute: [RouteTarget],
         threadPool: NIOThreadPool, loop: any EventLoop, metrics: RelayMetrics?, logger: Logger) {
        self.spool = spool
        self.couriers = couriers
        self.bounces = bounces
        self.schedule = schedule
        self.defaultRoute = defaultRoute
        self.threadPool = threadPool
        self.loop = loop
        self.metrics = metrics
        self.logger = logger
    }

    /// Starts delivering a spooled message; `content` nil reads it back
    /// when needed; `state` is the saved state after a restart.
    func enqueue(_ envelope: Envelope, content: ByteBuffer?, state: MessageState?) {
        guard tasks[envelope.id] == nil else { return }
        let initial = state ?? MessageState(envelope: envelope)
        upstreams[envelope.id] = Set((envelope.routes ?? []).flatMap(\.smarthostNames))
        tasks[envelope.id] = Task { await self.process(envelope, content: content, state: initial) }
    }

    /// Makes every waiting recipient due now (of the messages routed through
    /// `upstream`, when given); returns how many messages.
    func flush(upstream: String? = nil) -> Int {
        let ids = tasks.keys.filter { id in upstream.map { upstreams[id]?.contains($0) == true } ?? true }
        flushRequested.formUnion(ids)
        for id in ids { sleepers[id]?.cancel() }
        return ids.count
    }

    /// Gives up on a message's pending recipients now: they are bounced to
    /// the sender as failed (`5.0.0 bounced by an operator`). False when no
    /// such message is being delivered.
    func bounce(_ id: String) -> Bool {
        guard tasks[id] != nil else { return false }
        bounceRequested.insert(id)
        flushRequested.insert(id)
        sleepers[id]?.cancel()
        return true
    }

    /// Stops delivering a message and removes it from the spool.
    func delete(_ id: String) async -> Bool {
        guard let task = tasks.removeValue(forKey: id) else { return false }
        task.cancel()
        upstreams[id] = nil
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

    private func takeTurn() async {
        guard attempting >= Self.maxAttemptsAtOnce else {
            attempting += 1
            return
        }
        await withCheckedContinuation { turnQueue.append($0) }
    }

    /// Hands the turn to the next waiting message, if any.
    private func endTurn() {
        guard turnHead < turnQueue.count else {
            attempting -= 1
            return
        }
        let next = turnQueue[turnHead]
        turnHead += 1
        if turnHead > 1024 && turnHead * 2 > turnQueue.count {
            turnQueue.removeFirst(turnHead)
            turnHead = 0
        }
        next.resume()
    }

    private func takeFlush(_ id: String) -> Bool {
        flushRequested.remove(id) != nil
    }

    private func finished(_ id: String) {
        tasks[id] = nil
        upstreams[id] = nil
        flushRequested.remove(id)
    }

    // MARK: - Delivering one message

    private func process(_ envelope: Envelope, content initialContent: ByteBuffer?, state initial: MessageState) async {
        var state = initial
        var content = initialContent
        while !Task.isCancelled {
            let now = Date().timeIntervalSince1970
            if bounceRequested.remove(envelope.id) != nil {
                for index in state.recipients.indices where state.recipients[index].status == .pending {
                    state.recipients[index].status = .failed
                    state.recipients[index].lastResult = "550 5.0.0 bounced by an operator"
                }
                logger.notice("bounced by an operator", metadata: ["id": "\(envelope.id)"])
            }
            let flushing = takeFlush(envelope.id)
            let due = state.recipients.indices.filter {
                state.recipients[$0].status == .pending && (flushing || state.recipients[$0].nextAttempt <= now)
            }
            if !due.isEmpty {
                await takeTurn()
                guard !Task.isCancelled else { return endTurn() }
                if content == nil { content = await load(envelope.id) }
                if let content {
                    await attempt(due, of: envelope, content: content, state: &state)
                    // A finished message needs no state file: removing it
                    // from the spool (after its bounce) is its record.
                    if !state.isFinished { await save(state, of: envelope.id) }
                } else {
                    for index in due { state.recipients[index].nextAttempt = now + schedule.retryMin }
                }
                endTurn()
            }
            if state.isFinished {
                if await finish(envelope, content: content, state: &state) { finished(envelope.id) }
                return
            }
            await sendDelayNotices(envelope, content: content, state: &state)
            // Waiting for the next attempt: the content is read back from the
            // spool then, so a long queue does not sit in memory.
            content = nil
            var wake = state.nextAttempt ?? (now + schedule.retryMin)
            if state.owesDelayNotices(of: envelope, schedule: schedule) {
                wake = min(wake, max(now + 1, envelope.receivedAt + schedule.delayNotice))
            }
            await sleep(envelope.id, until: wake)
        }
    }

    private func attempt(_ due: [Int], of envelope: Envelope, content: ByteBuffer, state: inout MessageState) async {
        var groups: [[RouteTarget]: [Int]] = [:]
        for index in due {
            groups[envelope.route(index) ?? defaultRoute, default: []].append(index)
        }
        let addresses = state.recipients.map(\.address)
        let started = Date().timeIntervalSince1970
        let attempts = await withTaskGroup(of: [DeliveryAttempt].self) { group in
            for (targets, indices) in groups {
                let parcel = Parcel(envelope: envelope, recipients: indices.map { addresses[$0] }, content: content)
                group.addTask {
                    let (outcomes, courier) = await self.deliver(parcel, to: targets)
                    return indices.map { index in
                        DeliveryAttempt(index: index, outcome: outcomes[addresses[index]] ?? .deferred("no result"),
                                        target: courier?.name ?? "none", local: courier is MaildirCourier)
                    }
                }
            }
            var all: [DeliveryAttempt] = []
            for await part in group { all.append(contentsOf: part) }
            return all
        }
        let now = Date().timeIntervalSince1970
        let delay = String(format: "%.1fs", now - envelope.receivedAt)
        for record in state.record(attempts, of: envelope, now: now, schedule: schedule) {
            metrics?.deliveryAttempt(upstream: record.target, result: record.result.rawValue, seconds: now - started,
                                     reply: record.reply)
            logger.log(level: record.result == .delivered ? .info : .warning, "delivery attempt", metadata: [
                "id": "\(envelope.id)", "to": "<\(record.address)>", "upstream": "\(record.target)",
                "result": "\(record.result.rawValue)", "reply": "\(record.reply)", "delay": "\(delay)",
                "attempt": "\(record.attempt)",
            ])
        }
    }

    /// Hands the parcel to each target's courier in order, moving on when
    /// one cannot start. Returns the outcomes and the courier that gave
    /// them (or the last one tried; none for an empty route).
    private nonisolated func deliver(_ parcel: Parcel, to targets: [RouteTarget]) async -> ([String: RecipientOutcome], (any Courier)?) {
        var lastReason = "no route"
        var last: (any Courier)?
        var retryAt: Double?
        for target in targets {
            let courier = await couriers.courier(for: target)
            last = courier
            do {
                return (try await courier.deliver(parcel), courier)
            } catch {
                lastReason = error.description
                // Every target unavailable: wait for the first that said when it reopens.
                if let time = error.retryAt { retryAt = min(retryAt ?? time, time) }
                // A skipped upstream (down, paused, over quota) was logged once when its state changed.
                logger.log(level: error.retryAt == nil ? .warning : .debug, "upstream failed; trying the next one", metadata: [
                    "id": "\(parcel.envelope.id)", "upstream": "\(courier.name)", "reason": "\(error)",
                ])
            }
        }
        return (Dictionary(every: parcel.recipients, .deferred(lastReason, retryAt: retryAt)), last)
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

    /// Tells the sender which recipients are still waiting, once each, when
    /// they have waited `delayNotice` (RFC 3464 `Action: delayed`).
    private func sendDelayNotices(_ envelope: Envelope, content: ByteBuffer?, state: inout MessageState) async {
        var marked = state
        let notices = marked.takeDelayNotices(of: envelope, now: Date().timeIntervalSince1970, schedule: schedule)
        guard !notices.isEmpty else { return }
        var original = content
        if original == nil { original = await load(envelope.id) }
        guard (try? await bounces.send(notices, about: envelope, content: original ?? ByteBuffer(), on: loop).get()) == true else {
            return
        }
        state = marked
        await save(state, of: envelope.id)
    }

    /// Bounces the failed recipients (durably queued first), then forgets
    /// the message. Returns false when the bounce could not be queued (the
    /// message stays and finishing is tried again on the next start).
    private func finish(_ envelope: Envelope, content: ByteBuffer?, state: inout MessageState) async -> Bool {
        let reports = state.reports(for: envelope)
        if !reports.isEmpty && !envelope.sender.isEmpty && !state.bounced {
            var original = content
            if original == nil { original = await load(envelope.id) }
            let queued = (try? await bounces.send(reports, about: envelope, content: original ?? ByteBuffer(), on: loop).get()) ?? false
            guard queued else {
                logger.error("the message stays queued until its bounce can be", metadata: ["id": "\(envelope.id)"])
                return false
            }
            state.bounced = true
            await save(state, of: envelope.id)
        }
        await removeFiles(envelope.id)
        return true
    }

    private func removeFiles(_ id: String) async {
        try? await spool.forget(id, on: loop).get()
    }
}
