import Foundation
import Logging
import NIOCore
import NIOPosix

/// Delivers queued messages whose routes include smarthosts: each recipient
/// through its route's targets in failover order, by their couriers,
/// retried with exponential backoff until `maxAge`, each recipient's state
/// on disk after every attempt, a bounce for the failed ones, and only then
/// is the message removed from the spool.
///
/// Between attempts a message is only an id and a time here (`waiting`,
/// `wakeups`): its envelope, state and content are read back from the spool
/// when it falls due, so a long queue costs little memory. A new message is
/// kept in memory for its first attempt only while the content held stays
/// within `queue.memory` (`fitsInMemory`); so are the attempts reading theirs back,
/// so an upstream slower than the clients never fills memory. Held content
/// is counted as the buffer it takes (`ByteBuffer.memory(holding:)`), and
/// kept in one no larger than that (`compacted`). At most
/// `maxAttemptsAtOnce` messages are in an attempt, each in a task of its own.
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

    /// A message between attempts: when it is due, and the smarthosts its
    /// routes name (for flushing one upstream).
    private struct Waiting {
        var wake: Double
        var upstreams: Set<String>
        /// The memory its content takes in its attempt (`ByteBuffer.memory(holding:)`).
        var memory: Int
    }

    /// A message in an attempt.
    private struct Attempting {
        var task: Task<Void, Never>
        var upstreams: Set<String>
        var memory: Int
    }

    /// What an attempt of a message starts from: kept in memory from its
    /// arrival (no content when it was not kept), or read back from the
    /// spool (`loadMessage`).
    private struct QueuedMessage {
        var envelope: Envelope
        var content: ByteBuffer?
        var state: MessageState
        /// State records in its file since it was last written whole.
        var records = 0
        /// False for a file of an earlier build without a seal, which
        /// takes no record: its state is saved by writing it anew.
        var sealed = true
    }

    private var waiting: [String: Waiting] = [:]
    private var wakeups = WakeupHeap()
    private var attempting: [String: Attempting] = [:]
    private var arrivals: [String: QueuedMessage] = [:]
    /// Memory taken by content: by the arrivals kept and by the attempts
    /// (counted from their start, before they read it back).
    private(set) var contentInMemory = 0
    private var flushRequested: Set<String> = []
    /// The flushes asked for while the spool is still being read back
    /// after a start (nil: of every upstream), so that they reach the
    /// messages read back later too; nil once every message is back.
    private var flushesWhileResuming: Set<String?>? = []
    /// Messages an operator asked to bounce now.
    private var bounceRequested: Set<String> = []
    /// The sleep until the earliest waiting message is due, and when that is.
    private var timer: (task: Task<Void, Never>, wake: Double)?
    /// Messages in an attempt at most. The others wait their turn before
    /// their content is read, so a long queue that falls due at once (an
    /// upstream back after an outage, a flush) is not read into memory at
    /// once; far more than the upstreams' connections would not go faster.
    static let maxAttemptsAtOnce = 1000
    /// State records a message's file takes before the next save writes it
    /// anew with one: a message retried for days is not read back with
    /// hundreds of old states.
    static let recordsBeforeRewrite = 16

    /// The queue runs on the delivery loop, with the upstream pools, their
    /// ledger and their connections: a delivery's steps hand over to each
    /// other without waking another thread.
    nonisolated public var unownedExecutor: UnownedSerialExecutor { loop.executor.asUnownedSerialExecutor() }

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

    /// Starts delivering a message the spool has just made durable. It is
    /// kept in memory for its first attempt while the budget allows, else
    /// read back from the spool like any other.
    func enqueue(_ envelope: Envelope, content: ByteBuffer) {
        let id = envelope.id
        guard waiting[id] == nil, attempting[id] == nil else { return }
        let memory = ByteBuffer.memory(holding: content.readableBytes)
        if fitsInMemory(memory) {
            contentInMemory += memory
            arrivals[id] = QueuedMessage(envelope: envelope, content: content.compacted(), state: MessageState(envelope: envelope))
        }
        wait(id, until: 0, upstreams: Self.upstreams(of: envelope), memory: memory)
        startDue()
    }

    /// Takes back messages left in the spool (after a restart): each with
    /// the time it is due, from its saved state.
    func resume(_ messages: [(envelope: Envelope, state: MessageState?, size: Int)]) {
        for (envelope, state, size) in messages where waiting[envelope.id] == nil && attempting[envelope.id] == nil {
            var wake = state.map { Self.wake(envelope, $0, schedule: schedule, now: Date().timeIntervalSince1970) } ?? 0
            let upstreams = Self.upstreams(of: envelope)
            if let flushes = flushesWhileResuming, flushes.contains(where: { Self.flush($0, covers: upstreams) }) {
                flushRequested.insert(envelope.id)
                wake = 0
            }
            wait(envelope.id, until: wake, upstreams: upstreams, memory: ByteBuffer.memory(holding: size))
        }
        startDue()
    }

    /// Every message left in the spool has been handed to `resume`.
    func finishResuming() {
        flushesWhileResuming = nil
    }

    /// Makes every waiting recipient due now (of the messages routed through
    /// `upstream`, when given); returns how many messages. Right after a
    /// start, it also covers the messages not yet read back from the spool.
    func flush(upstream: String? = nil) -> Int {
        flushesWhileResuming?.insert(upstream)
        let idle = waiting.filter { Self.flush(upstream, covers: $0.value.upstreams) }.map(\.key)
        let busy = attempting.filter { Self.flush(upstream, covers: $0.value.upstreams) }.map(\.key)
        flushRequested.formUnion(idle + busy)
        for id in idle { makeDue(id) }
        startDue()
        return idle.count + busy.count
    }

    /// Gives up on a message's pending recipients now: they are bounced to
    /// the sender as failed (`5.0.0 bounced by an operator`). False when no
    /// such message is being delivered.
    func bounce(_ id: String) -> Bool {
        guard waiting[id] != nil || attempting[id] != nil else { return false }
        bounceRequested.insert(id)
        flushRequested.insert(id)
        makeDue(id)
        startDue()
        return true
    }

    /// Stops delivering a message and removes it from the spool.
    func delete(_ id: String) async -> Bool {
        if let entry = attempting.removeValue(forKey: id) {
            entry.task.cancel()
            contentInMemory -= entry.memory  // its arrival's too, if it had not begun
        } else if let entry = waiting.removeValue(forKey: id) {
            if arrivals[id] != nil { contentInMemory -= entry.memory }
        } else {
            return false
        }
        arrivals[id] = nil
        flushRequested.remove(id)
        bounceRequested.remove(id)
        await removeFile(id, waiting: true)
        logger.info("deleted from the queue", metadata: ["id": "\(id)"])
        return true
    }

    public var count: Int { waiting.count + attempting.count }

    // MARK: - Scheduling

    /// Whether a flush of `upstream` (nil: all) reaches a message routed through `upstreams`.
    private static func flush(_ upstream: String?, covers upstreams: Set<String>) -> Bool {
        upstream.map { upstreams.contains($0) } ?? true
    }

    private static func upstreams(of envelope: Envelope) -> Set<String> {
        Set((envelope.routes ?? []).flatMap(\.smarthostNames))
    }

    /// When a message with this state is next due: its next attempt, or
    /// sooner when it owes a delay notice.
    private static func wake(_ envelope: Envelope, _ state: MessageState, schedule: QueueSchedule, now: Double) -> Double {
        var wake = state.nextAttempt ?? (now + schedule.retryMin)
        if state.owesDelayNotices(of: envelope, schedule: schedule) {
            wake = min(wake, max(now + 1, envelope.receivedAt + schedule.delayNotice))
        }
        return wake
    }

    /// Whether `bytes` more of memory stay within `queue.memory`
    /// (one attempt at a time goes beyond it, for a message larger than
    /// the whole budget: `startDue`).
    private func fitsInMemory(_ bytes: Int) -> Bool {
        contentInMemory + bytes <= schedule.memory
    }

    private func wait(_ id: String, until wake: Double, upstreams: Set<String>, memory: Int) {
        waiting[id] = Waiting(wake: wake, upstreams: upstreams, memory: memory)
        wakeups.push(wake, id)
    }

    /// A waiting message is due now.
    private func makeDue(_ id: String) {
        if let entry = waiting[id] { wait(id, until: 0, upstreams: entry.upstreams, memory: entry.memory) }
    }

    /// Starts the attempts of the messages due now, as many as may run and
    /// as the content budget allows, and sleeps until the next one is due.
    private func startDue() {
        let now = Date().timeIntervalSince1970
        while attempting.count < Self.maxAttemptsAtOnce, let (wake, id) = wakeups.first {
            guard let entry = waiting[id], entry.wake == wake else {
                wakeups.popFirst()  // rescheduled or gone since
                continue
            }
            guard wake <= now else { break }
            // One that reads its content back waits for room, unless no other attempt could make it.
            let kept = arrivals[id] != nil
            if !kept && !fitsInMemory(entry.memory) && !attempting.isEmpty { break }
            wakeups.popFirst()
            waiting[id] = nil
            if !kept { contentInMemory += entry.memory }
            attempting[id] = Attempting(task: Task { await self.attemptMessage(id) }, upstreams: entry.upstreams, memory: entry.memory)
        }
        guard attempting.count < Self.maxAttemptsAtOnce, let next = wakeups.first?.time, next > now else { return }
        if let timer, timer.wake <= next { return }
        timer?.task.cancel()
        let task = Task {
            guard (try? await Task.sleep(nanoseconds: UInt64((next - now) * 1e9))) != nil else { return }
            self.timerFired(next)
        }
        timer = (task, next)
    }

    private func timerFired(_ wake: Double) {
        if timer?.wake == wake { timer = nil }
        startDue()
    }

    // MARK: - Delivering one message

    /// One attempt of a message: the recipients due (all pending ones when
    /// flushed), then its state saved and its next time set, or, when no
    /// recipient is left pending, its bounce and its removal.
    private func attemptMessage(_ id: String) async {
        defer {
            if let entry = attempting.removeValue(forKey: id) { contentInMemory -= entry.memory }
            startDue()
        }
        let (upstreams, memory) = attempting[id].map { ($0.upstreams, $0.memory) } ?? ([], 0)
        let loaded = if let arrival = arrivals.removeValue(forKey: id) { Result<QueuedMessage, ReadFailure>.success(arrival) }
            else { await loadMessage(id) }
        guard case .success(var message) = loaded else {
            if case .failure(.unreadable) = loaded, !Task.isCancelled {
                wait(id, until: Date().timeIntervalSince1970 + schedule.retryMin, upstreams: upstreams, memory: memory)
            }
            return
        }
        let envelope = message.envelope
        let now = Date().timeIntervalSince1970
        if bounceRequested.remove(id) != nil {
            for index in message.state.recipients.indices where message.state.recipients[index].status == .pending {
                message.state.recipients[index].status = .failed
                message.state.recipients[index].lastResult = "550 5.0.0 bounced by an operator"
            }
            logger.notice("bounced by an operator", metadata: ["id": "\(id)"])
        }
        let flushing = flushRequested.remove(id) != nil
        let due = message.state.recipients.indices.filter {
            message.state.recipients[$0].status == .pending && (flushing || message.state.recipients[$0].nextAttempt <= now)
        }
        if !due.isEmpty {
            if message.content == nil {
                switch await load(id) {
                case .success(let read): message.content = read
                case .failure(.setAside): return
                case .failure(.unreadable): break
                }
            }
            if let content = message.content {
                await attempt(due, of: envelope, content: content, state: &message.state)
            } else {
                for index in due { message.state.recipients[index].nextAttempt = now + schedule.retryMin }
            }
        }
        guard !Task.isCancelled else { return }  // deleted meanwhile
        if message.state.isFinished {
            // A finished message needs no saved state: removing it from the
            // spool (after its bounce) is its record.
            if !(await finish(&message)) {
                wait(id, until: Date().timeIntervalSince1970 + schedule.retryMin, upstreams: upstreams, memory: memory)
            }
            return
        }
        if !due.isEmpty { await save(&message) }
        await sendDelayNotices(&message)
        guard !Task.isCancelled else { return }
        let wake = flushRequested.contains(id) ? 0 : Self.wake(envelope, message.state, schedule: schedule, now: Date().timeIntervalSince1970)
        wait(id, until: wake, upstreams: upstreams, memory: memory)
    }

    private func attempt(_ due: [Int], of envelope: Envelope, content: ByteBuffer, state: inout MessageState) async {
        var groups: [[RouteTarget]: [Int]] = [:]
        for index in due {
            groups[envelope.route(index) ?? defaultRoute, default: []].append(index)
        }
        let addresses = state.recipients.map(\.address)
        let started = Date().timeIntervalSince1970
        let deliverGroup: @Sendable ([RouteTarget], [Int]) async -> [DeliveryAttempt] = { targets, indices in
            let parcel = Parcel(envelope: envelope, recipients: indices.map { addresses[$0] }, content: content)
            let (outcomes, courier) = await self.deliver(parcel, to: targets)
            return indices.map { index in
                DeliveryAttempt(index: index, outcome: outcomes[addresses[index]] ?? .deferred("no result"),
                                target: courier?.name ?? "none", local: courier is MaildirCourier)
            }
        }
        let attempts: [DeliveryAttempt]
        if groups.count == 1, let (targets, indices) = groups.first {
            attempts = await deliverGroup(targets, indices)
        } else {
            // Different routes go in parallel.
            attempts = await withTaskGroup(of: [DeliveryAttempt].self) { group in
                for (targets, indices) in groups { group.addTask { await deliverGroup(targets, indices) } }
                var all: [DeliveryAttempt] = []
                for await part in group { all.append(contentsOf: part) }
                return all
            }
        }
        let now = Date().timeIntervalSince1970
        for record in state.record(attempts, of: envelope, now: now, schedule: schedule) {
            metrics?.deliveryAttempt(upstream: record.target, result: record.result.rawValue, seconds: now - started,
                                     reply: record.reply)
            logger.log(level: record.result == .delivered ? .info : .warning, "delivery attempt", metadata: [
                "id": "\(envelope.id)", "to": "<\(record.address)>", "upstream": "\(record.target)",
                "result": "\(record.result.rawValue)", "reply": "\(record.reply)",
                "delay": "\(String(format: "%.1fs", now - envelope.receivedAt))",
                "attempt": "\(record.attempt)",
            ])
        }
    }

    /// Hands the parcel to each target's courier in order, moving on when
    /// one cannot start. Returns the outcomes and the courier that gave
    /// them (or the last one tried; none for an empty route).
    private func deliver(_ parcel: Parcel, to targets: [RouteTarget]) async -> ([String: RecipientOutcome], (any Courier)?) {
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

    /// Why a queued message's file gave nothing.
    private enum ReadFailure: Error {
        /// Reading failed (an I/O error): tried again later.
        case unreadable
        /// It holds no whole message; it was moved to the corrupt folder.
        case setAside
    }

    /// A waiting message read back from the spool: its file (envelope,
    /// content and saved state) read and decoded once on the thread pool,
    /// with the other messages' reads asked for meanwhile (`Spool.load`).
    private nonisolated func loadMessage(_ id: String) async -> Result<QueuedMessage, ReadFailure> {
        await read(id).map { entry in
            QueuedMessage(envelope: entry.envelope, content: entry.content, state: entry.state ?? MessageState(envelope: entry.envelope),
                          records: entry.records, sealed: entry.sealed)
        }
    }

    private nonisolated func load(_ id: String) async -> Result<ByteBuffer, ReadFailure> {
        await read(id).map(\.content)
    }

    private nonisolated func read(_ id: String) async -> Result<SpoolEntry, ReadFailure> {
        do {
            return .success(try await spool.load(id, on: loop).get())
        } catch {
            let setAside = try? await threadPool.runIfActive { [spool, logger] in
                spool.setAsideIfCorrupt(id, after: error, logger: logger)
            }
            return .failure(setAside == true ? .setAside : .unreadable)
        }
    }

    /// Saves the message's state: a record appended to its file, or, once
    /// the file holds `recordsBeforeRewrite` of them (or cannot take one)
    /// and the content is at hand, the file written anew with this one.
    private func save(_ message: inout QueuedMessage) async {
        let id = message.envelope.id
        do {
            if let content = message.content, message.records >= Self.recordsBeforeRewrite || !message.sealed {
                try await spool.rewrite(message.envelope, content: content, state: message.state, on: loop).get()
                message.records = 1
                message.sealed = true
            } else {
                guard message.sealed else { throw SpoolFileError("its file has no seal and its content could not be read") }
                try await spool.saveState(message.state, of: id, on: loop).get()
                message.records += 1
            }
        } catch {
            logger.error("cannot save delivery state", metadata: ["id": "\(id)", "error": "\(error)"])
        }
    }

    /// Tells the sender which recipients are still waiting, once each, when
    /// they have waited `delayNotice` (RFC 3464 `Action: delayed`).
    private func sendDelayNotices(_ message: inout QueuedMessage) async {
        let envelope = message.envelope
        var marked = message.state
        let notices = marked.takeDelayNotices(of: envelope, now: Date().timeIntervalSince1970, schedule: schedule)
        guard !notices.isEmpty else { return }
        if message.content == nil { message.content = try? await load(envelope.id).get() }
        guard (try? await bounces.send(notices, about: envelope, content: message.content ?? ByteBuffer(), on: loop).get()) == true
        else { return }
        message.state = marked
        await save(&message)
    }

    /// Bounces the failed recipients (durably queued first), then forgets
    /// the message. Returns false when the bounce could not be queued (the
    /// message stays and finishing is tried again on the next start).
    private func finish(_ message: inout QueuedMessage) async -> Bool {
        let envelope = message.envelope
        let reports = message.state.reports(for: envelope)
        if !reports.isEmpty && !envelope.sender.isEmpty && !message.state.bounced {
            if message.content == nil { message.content = try? await load(envelope.id).get() }
            let queued = (try? await bounces.send(reports, about: envelope, content: message.content ?? ByteBuffer(), on: loop).get()) ?? false
            guard queued else {
                logger.error("the message stays queued until its bounce can be", metadata: ["id": "\(envelope.id)"])
                return false
            }
            message.state.bounced = true
            await save(&message)
        }
        await removeFile(envelope.id, waiting: false)
        return true
    }

    /// Removes a message's file. An operator's delete waits until it is
    /// gone; a finished delivery need not (`Spool.discard`): the message has
    /// left the queue's memory, and only a start-up scan or `relais queue
    /// list` reads the folder (the latter may show it a moment longer).
    private func removeFile(_ id: String, waiting: Bool) async {
        let removed = waiting ? spool.forget(id, on: loop) : spool.discard(id, on: loop)
        try? await removed?.get()
    }
}
