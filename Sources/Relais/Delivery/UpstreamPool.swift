import Foundation
import NIOCore
import RelaisTLS

/// The connections to one smarthost: at most `maxConnections` at once
/// (fewer while it throttles), reused for up to `messagesPerConnection`
/// messages (RSET between), closed after `idleTimeout` unused, at most
/// `rate` transactions per second, none while its circuit breaker is open
/// or its quota is used up (the ledger decides).
actor UpstreamPool {
    let smarthost: Smarthost
    private let ledger: UpstreamLedger
    private let heloName: String
    /// The delivery loop: the pool runs on it, and its connections too.
    private let loop: any EventLoop
    private var idle: [(connection: SMTPClientConnection, since: Date)] = []
    private var open = 0 {
        didSet { metrics?.set("relais_upstream_connections", [("upstream", smarthost.name)], to: Double(open)) }
    }
    private let metrics: RelayMetrics?
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var nextSlot = Date.distantPast
    private var sweeping = false
    private var tlsContext: TLSContext?
    private let credential: @Sendable () async throws -> String
    /// The cluster's limits, for a `shared = true` smarthost with a cluster configured.
    private let shared: SharedLimits?
    /// The cluster lease each open connection holds, by connection.
    private var leases: [ObjectIdentifier: String] = [:]
    private var awaitingLease = false

    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.executor.asUnownedSerialExecutor() }

    init(smarthost: Smarthost, ledger: UpstreamLedger, heloName: String, loop: any EventLoop, metrics: RelayMetrics?,
         shared: SharedLimits?, credential: @escaping @Sendable () async throws -> String) {
        self.smarthost = smarthost
        self.ledger = ledger
        self.shared = smarthost.isShared ? shared : nil
        self.metrics = metrics
        self.heloName = heloName
        self.loop = loop
        self.credential = credential
    }

    /// The client TLS context (verification per `verify_cert` and `ca_file`), made once.
    private func clientContext() throws -> TLSContext? {
        guard smarthost.tls != .none else { return nil }
        if let tlsContext { return tlsContext }
        let context = try TLSContext.client(verify: smarthost.verifyCertificate, caFile: smarthost.caFile)
        tlsContext = context
        return context
    }

    /// Delivers `message` over a pooled connection. Throws
    /// `UpstreamTransaction.FailoverReason` when the upstream could not
    /// start the transaction (down, paused, over quota, connection failure,
    /// timeout, 4xx at MAIL).
    func deliver(_ message: OutboundMessage) async throws -> [String: RecipientOutcome] {
        let mode = await shared?.mode
        var pass: UpstreamLedger.Pass
        do {
            // A shared quota is counted in Redis; while Redis is away, this node keeps its share.
            let quotaShare = mode == nil ? 1 : mode?.localShare
            pass = try await ledger.admit(smarthost, at: Self.now, quotaShare: quotaShare)
        } catch {
            throw UpstreamTransaction.FailoverReason(description: error.description, retryAt: error.retryAt)
        }
        if let shared, mode == .shared, let quota = smarthost.quota {
            switch await shared.reserveQuota(smarthost.name, quota) {
            case .reserved(let at):
                pass.sharedReservation = at
            case .refused(let reason, let opensAt):
                await ledger.release(smarthost, pass, at: Self.now)
                throw UpstreamTransaction.FailoverReason(description: "\(smarthost.name): \(reason)", retryAt: opensAt)
            case .fallback:
                break
            }
        }
        await waitForRate(mode)
        let connection: SMTPClientConnection
        do {
            connection = try await acquire(probe: pass.probe)
        } catch {
            await giveBack(pass)
            let refusal = error as? UpstreamLedger.Refusal
            throw UpstreamTransaction.FailoverReason(description: refusal?.description ?? "\(error)", retryAt: refusal?.retryAt)
        }
        do {
            let outcomes = try await UpstreamTransaction(connection: connection, message: message).run()
            await release(connection)
            if outcomes.values.contains(where: { if case .delivered = $0 { true } else { false } }) {
                await ledger.succeeded(smarthost, delivered: true, at: Self.now)
            } else {
                await giveBack(pass)
            }
            return outcomes
        } catch let reason as UpstreamTransaction.FailoverReason {
            await release(connection)
            await giveBack(pass)
            if let reply = reason.reply, UpstreamFailure.isThrottle(reply) {
                await ledger.failed(smarthost, .throttle(reason.description), at: Self.now)
            }
            throw reason
        }
    }

    private static var now: Double { Date().timeIntervalSince1970 }

    /// Gives back the quota a delivery that sent nothing had reserved.
    private func giveBack(_ pass: UpstreamLedger.Pass) async {
        await ledger.release(smarthost, pass, at: Self.now)
        if let shared, let at = pass.sharedReservation, let quota = smarthost.quota {
            await shared.releaseQuota(smarthost.name, quota, reservedAt: at)
        }
    }

    /// Waits for this message's send slot: the cluster's schedule in Redis
    /// for a shared rate, else this node's own (its share while Redis is away).
    private func waitForRate(_ mode: SharedLimits.Mode?) async {
        guard let rate = smarthost.rate else { return }
        var wait: Double
        if let shared, mode == .shared, let slot = await shared.rateWait(smarthost.name, interval: 1 / rate) {
            wait = slot
        } else {
            // Asked again: Redis may have gone away since `mode` was read.
            let nodes = await shared?.mode.localShare ?? 1
            let now = Date()
            let slot = max(now, nextSlot)
            nextSlot = slot.addingTimeInterval(Double(nodes) / rate)
            wait = slot.timeIntervalSince(now)
        }
        if wait > 0 { try? await Task.sleep(nanoseconds: UInt64(wait * 1e9)) }
    }

    private func acquire(probe: Bool) async throws -> SMTPClientConnection {
        while true {
            // Waiting may have outlasted the upstream's health: ask each time (the probe itself may go).
            if !probe, let refusal = await ledger.connectRefusal(smarthost, at: Self.now) {
                wakeOne()  // the next waiter learns it too, and so on down the line
                throw refusal
            }
            while let candidate = idle.popLast() {
                if candidate.connection.isUsable {
                    if await reset(candidate.connection) { return candidate.connection }
                }
                candidate.connection.close()
                await closed(candidate.connection)
            }
            var (limit, failing) = await ledger.connectionLimit(smarthost)
            // Once connections fail, one attempt at a time until one succeeds:
            // the others go elsewhere instead of each waiting out a timeout.
            if failing && open > 0 && !probe {
                wakeOne()
                throw UpstreamLedger.Refusal(description: "\(smarthost.name): connections are failing",
                                             retryAt: Self.now + smarthost.healthSettings.downMin)
            }
            var lease: String?
            if open < limit, let shared {
                // One task at a time asks the cluster for a lease; the others wait here.
                guard !awaitingLease else {
                    await withCheckedContinuation { waiters.append($0) }
                    continue
                }
                awaitingLease = true
                let answer = await leaseWhenFree(shared)
                awaitingLease = false
                wakeOne()
                switch answer {
                case .granted(let granted)?: lease = granted
                case .fallback(let nodes)?: limit = min(limit, max(1, smarthost.maxConnections / nodes))
                case .busy?, nil: continue
                }
            }
            if open < limit {
                open += 1
                do {
                    let connection = try await SMTPClientConnection.open(to: smarthost, heloName: smarthost.heloName ?? heloName, group: loop,
                                                                         tlsContext: try clientContext(), credential: credential)
                    if let lease { leases[ObjectIdentifier(connection)] = lease }
                    await ledger.succeeded(smarthost, delivered: false, at: Self.now)
                    return connection
                } catch {
                    open -= 1
                    if let lease { await shared?.releaseLease(smarthost.name, lease) }
                    // Counted before the next waiter runs, so it sees the breaker open.
                    await ledger.failed(smarthost, UpstreamFailure.classify(error), at: Self.now)
                    wakeOne()
                    throw error
                }
            }
            if let lease { await shared?.releaseLease(smarthost.name, lease) }
            await withCheckedContinuation { waiters.append($0) }
        }
    }

    /// Asks for a cluster lease until one is free (polling every 100 ms) or
    /// Redis is away; nil when a connection of this pool fell idle meanwhile.
    private func leaseWhenFree(_ shared: SharedLimits) async -> SharedLimits.LeaseAnswer? {
        while true {
            let answer = await shared.acquireLease(smarthost.name, limit: smarthost.maxConnections)
            guard case .busy = answer else { return answer }
            try? await Task.sleep(nanoseconds: 100_000_000)
            if !idle.isEmpty { return nil }
        }
    }

    /// A connection is gone: one fewer open, and its cluster lease back.
    private func closed(_ connection: SMTPClientConnection) async {
        open -= 1
        if let lease = leases.removeValue(forKey: ObjectIdentifier(connection)) {
            await shared?.releaseLease(smarthost.name, lease)
        }
    }

    /// RSET before reusing a connection whose last transaction did not
    /// complete (after a completed one the server has reset already).
    private func reset(_ connection: SMTPClientConnection) async -> Bool {
        guard connection.needsReset else { return true }
        guard let reply = try? await connection.exchange([.rset], stage: "RSET").first else { return false }
        if reply.isPositive { connection.needsReset = false }
        return reply.isPositive
    }

    private func release(_ connection: SMTPClientConnection) async {
        if connection.isUsable && connection.messagesSent < smarthost.messagesPerConnection {
            idle.append((connection, Date()))
            scheduleSweep()
        } else {
            // Counted as open until it is closed: the upstream never sees more than `maxConnections`.
            if connection.isUsable { await connection.quit() } else { connection.close() }
            await closed(connection)
        }
        wakeOne()
    }

    private func wakeOne() {
        if !waiters.isEmpty { waiters.removeFirst().resume() }
    }

    /// Closes connections idle for longer than `idleTimeout`.
    private func scheduleSweep() {
        guard !sweeping else { return }
        sweeping = true
        Task {
            try? await Task.sleep(nanoseconds: UInt64(smarthost.idleTimeout * 1e9))
            await sweep()
        }
    }

    private func sweep() async {
        sweeping = false
        let cutoff = Date().addingTimeInterval(-smarthost.idleTimeout)
        let stale = idle.filter { $0.since <= cutoff }
        idle.removeAll { $0.since <= cutoff }
        for entry in stale {
            await entry.connection.quit()
            await closed(entry.connection)
        }
        if !idle.isEmpty { scheduleSweep() }
        for _ in stale { wakeOne() }
    }
}

/// One pool per smarthost (by its whole configuration), sharing one ledger
/// (by upstream name).
actor UpstreamPools {
    private var pools: [Smarthost: UpstreamPool] = [:]
    private let ledger: UpstreamLedger
    private let heloName: String
    /// The delivery loop, where the pools and their connections run.
    private let loop: any EventLoop
    private let metrics: RelayMetrics?
    private let shared: SharedLimits?
    private let credentials: @Sendable (Smarthost) async throws -> String

    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.executor.asUnownedSerialExecutor() }

    init(ledger: UpstreamLedger, heloName: String, loop: any EventLoop, metrics: RelayMetrics?, shared: SharedLimits?,
         credentials: @escaping @Sendable (Smarthost) async throws -> String) {
        self.ledger = ledger
        self.shared = shared
        self.metrics = metrics
        self.heloName = heloName
        self.loop = loop
        self.credentials = credentials
    }

    func pool(for smarthost: Smarthost) -> UpstreamPool {
        if let pool = pools[smarthost] { return pool }
        let credentials = self.credentials
        let pool = UpstreamPool(smarthost: smarthost, ledger: ledger, heloName: heloName, loop: loop, metrics: metrics,
                                shared: shared) {
            try await credentials(smarthost)
        }
        pools[smarthost] = pool
        return pool
    }
}
