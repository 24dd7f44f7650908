import Foundation
import Logging
import NIOCore
import NIOPosix

/// What Relais knows about each upstream, by name, whichever pool (policy
/// version) delivers to it: its circuit breaker and its quota usage. Kept
/// in `spool/upstreams/<name>.json` (written after each change, not
/// synced: a crash may forget the last few counts) so that quota counts
/// survive a restart and `relais queue list` can show each upstream's state.
actor UpstreamLedger {
    /// One upstream's file.
    struct Record: Codable, Sendable {
        var health = UpstreamHealth()
        var usage = QuotaUsage()
        /// The smarthost's quota, so that readers of the file can show it.
        var quota: UpstreamQuota?
        /// Paused by an operator (`POST /api/upstreams/<name>/pause`): its
        /// mail stays queued until resumed; survives reloads and restarts.
        var held: Bool?
        /// `up`, `down until T`, ... when the file was written.
        var state = "up"
        var updated: Double = 0
    }

    /// May a delivery go ahead, and what it holds if so.
    struct Pass: Sendable {
        var probe: Bool
        /// When a quota reservation was made (to give back if nothing was sent).
        var reservedAt: Double?
        /// When the cluster's shared quota was reserved in Redis (Redis' clock).
        var sharedReservation: Double?
    }

    /// Refused for now; the route's next upstream is tried, or the
    /// recipient waits until `retryAt`.
    struct Refusal: Error, CustomStringConvertible {
        var description: String
        var retryAt: Double
    }

    private var records: [String: Record]
    private let folder: String
    private let threadPool: NIOThreadPool
    /// The delivery loop, where the ledger runs (beside the pools that ask it).
    private let loop: any EventLoop
    private let logger: Logger
    private var unsaved: Set<String> = []
    private var saving = false
    /// The wait before the next write, cut short by a change of state.
    private var saveWait: Task<Void, any Error>?

    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.executor.asUnownedSerialExecutor() }

    /// Reads the saved quota counts (health starts afresh). Blocking: call at start-up.
    init(folder: String, threadPool: NIOThreadPool, loop: any EventLoop, logger: Logger) {
        self.folder = folder
        self.threadPool = threadPool
        self.loop = loop
        self.logger = logger
        let records = SpoolFolder.upstreamStates(in: folder).mapValues { Record(usage: $0.usage, quota: $0.quota, held: $0.held) }
        self.records = records
    }

    /// The health check and the quota reservation before a delivery.
    /// `quotaShare` divides the quota (a cluster node's share while Redis is
    /// away); nil when the cluster counts the quota (then it is only recorded here).
    func admit(_ smarthost: Smarthost, at now: Double, quotaShare: Int? = 1) throws(Refusal) -> Pass {
        let known = records[smarthost.name]
        var record = known ?? Record()
        let health = record.health
        if record.held == true {
            throw Refusal(description: "\(smarthost.name) is paused by an operator", retryAt: now + 60)
        }
        if let share = quotaShare, let quota = smarthost.quota?.divided(by: share),
           let (reason, opensAt) = record.usage.refusal(at: now, quota) {
            throw Refusal(description: "\(smarthost.name): \(reason); the window opens at \(UpstreamHealth.clock(opensAt))",
                          retryAt: opensAt)
        }
        let (admission, transition) = record.health.admit(at: now, smarthost.healthSettings)
        if case .skip(let reason, let retryAt) = admission {
            throw Refusal(description: "\(smarthost.name) is \(reason)", retryAt: retryAt)
        }
        var reservedAt: Double?
        if let quota = smarthost.quota {
            record.usage.reserve(at: now, quota)
            record.quota = quota
            reservedAt = now
        }
        // Most admissions change nothing worth writing down.
        if known == nil || reservedAt != nil || transition != nil || record.health != health {
            update(smarthost.name, record, transition, now: now)
        }
        return Pass(probe: admission == .probe, reservedAt: reservedAt)
    }

    /// Pauses (`held`) or resumes an upstream by name for an operator.
    func hold(_ name: String, _ held: Bool, at now: Double) {
        var record = records[name] ?? Record()
        record.held = held ? true : nil
        logger.notice(held ? "upstream paused by an operator" : "upstream resumed by an operator", metadata: ["upstream": "\(name)"])
        update(name, record, nil, now: now)
        saveWait?.cancel()  // an operator's hold is on disk at once
    }

    /// Every known upstream's record, with its state as of `now`.
    func snapshot(at now: Double) -> [String: Record] {
        records.mapValues { record in
            var record = record
            record.state = record.held == true ? "paused by an operator" : record.health.summary(at: now)
            return record
        }
    }

    /// Why no new connection may be opened now (down, probing, paused); nil when one may.
    func connectRefusal(_ smarthost: Smarthost, at now: Double) -> Refusal? {
        guard let (reason, retryAt) = records[smarthost.name]?.health.refusal(at: now, smarthost.healthSettings) else {
            return nil
        }
        return Refusal(description: "\(smarthost.name) is \(reason)", retryAt: retryAt)
    }

    /// How many connections the pool may have open now, and whether the
    /// last connection attempt failed (then only one at a time).
    func connectionLimit(_ smarthost: Smarthost) -> (Int, failing: Bool) {
        let health = records[smarthost.name]?.health
        return (health?.connectionCap.map { min($0, smarthost.maxConnections) } ?? smarthost.maxConnections,
                (health?.consecutiveFailures ?? 0) > 0)
    }

    /// A connection opened, or (`delivered`) a transaction went through.
    func succeeded(_ smarthost: Smarthost, delivered: Bool, at now: Double) {
        var record = records[smarthost.name] ?? Record()
        let before = record.health
        let transition = record.health.succeeded(delivered: delivered, maxConnections: smarthost.maxConnections)
        guard transition != nil || record.health != before else { return }
        update(smarthost.name, record, transition, now: now)
    }

    /// A connection could not be had, or the upstream throttled.
    func failed(_ smarthost: Smarthost, _ failure: UpstreamFailure, at now: Double) {
        var record = records[smarthost.name] ?? Record()
        let transition: UpstreamHealth.Transition?
        switch failure {
        case .connectivity(let reason):
            transition = record.health.failed(reason, at: now, smarthost.healthSettings)
        case .throttle(let reason):
            transition = record.health.throttled(reason, at: now, smarthost.healthSettings,
                                                 maxConnections: smarthost.maxConnections)
        case .other:
            return
        }
        update(smarthost.name, record, transition, now: now)
    }

    /// Gives back a quota reservation for a delivery that sent nothing.
    func release(_ smarthost: Smarthost, _ pass: Pass, at now: Double) {
        guard let reservedAt = pass.reservedAt, let quota = smarthost.quota, var record = records[smarthost.name] else { return }
        record.usage.release(reservedAt: reservedAt, quota)
        update(smarthost.name, record, nil, now: now)
    }

    private func update(_ name: String, _ record: Record, _ transition: UpstreamHealth.Transition?, now: Double) {
        var record = record
        record.state = record.health.summary(at: now)
        record.updated = now
        records[name] = record
        if let transition { log(transition, of: name) }
        unsaved.insert(name)
        if !saving {
            saving = true
            // Counts changed meanwhile share one write; a change of state
            // (down, paused, up) ends the wait, so it is on disk at once.
            let wait = Task { try await Task.sleep(nanoseconds: Self.saveDelay) }
            saveWait = wait
            Task {
                _ = await wait.result
                await saveAll()
            }
        }
        if transition != nil { saveWait?.cancel() }
    }

    /// How long a change waits for others before the records are written.
    private static let saveDelay: UInt64 = 200_000_000

    private func log(_ transition: UpstreamHealth.Transition, of name: String) {
        switch transition {
        case .down(let until, let reason):
            logger.warning("upstream down", metadata: ["upstream": "\(name)", "until": "\(UpstreamHealth.clock(until))",
                                                       "reason": "\(reason)"])
        case .probing:
            logger.info("upstream probing", metadata: ["upstream": "\(name)"])
        case .up:
            logger.info("upstream up", metadata: ["upstream": "\(name)"])
        case .paused(let until, let reason):
            logger.warning("upstream paused", metadata: ["upstream": "\(name)", "until": "\(UpstreamHealth.clock(until))",
                                                         "reason": "\(reason)"])
        }
    }

    /// Writes the changed records one after another on the thread pool
    /// (also at shutdown, so nothing waits in memory).
    func saveAll() async {
        while let name = unsaved.popFirst() {
            guard let record = records[name], let data = try? JSONEncoder().encode(record) else { continue }
            let path = folder + "/" + Self.fileName(name)
            do {
                try await threadPool.runIfActive { [folder] in
                    try DurableFiles.makeFolders([folder])
                    try DurableFiles.replaceUnsynced(path, with: data)
                }
            } catch {
                logger.error("cannot save upstream state", metadata: ["upstream": "\(name)", "error": "\(error)"])
            }
        }
        saving = false
    }

    /// The file of upstream `name` (its name with `/` made safe).
    static func fileName(_ name: String) -> String {
        name.replacingOccurrences(of: "/", with: "_") + ".json"
    }
}
