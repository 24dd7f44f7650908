import Foundation
import Logging
import NIOCore
import RelaisDNS
import NIOPosix
import ServiceLifecycle

/// Carries messages to their destination. Messages routed only to local
/// maildirs take the fast path: batched writes sharing one flush. A new one
/// is delivered before the client's 250 and never spooled; one read back
/// from the spool (after a restart, or when that first write failed) is
/// retried after `retryDelay` on failure. Messages with a smarthost in a
/// route go to the `RelayQueue`. A message leaves the spool only after its
/// delivery is durable. As a service it picks up the bounces that delivery
/// and intake spool.
public final class DeliveryQueue: Sendable, Service {
    /// A message to deliver; `content` is nil when it must be read back from
    /// the spool (after a restart or a retry).
    struct Item: Sendable {
        var id: String
        var envelope: Envelope?
        var content: ByteBuffer?
        /// Set for a message not in the spool, delivered before it is
        /// acknowledged: succeeded once its files are durable, failed
        /// (and not retried) otherwise.
        var acknowledgement: EventLoopPromise<Void>?
    }

    private let spool: Spool
    private let threadPool: NIOThreadPool
    private let deliverer: GroupCommitQueue<Item>
    let relay: RelayQueue
    /// Makes and spools the reports senders are owed.
    let bounces: BounceSender
    /// Each upstream's health and quota usage.
    let ledger: UpstreamLedger
    private let spooledBounces: AsyncStream<SpooledMessage>
    /// The loop delivery runs on.
    private let loop: any EventLoop

    /// `defaultRoute` serves messages queued without stored routes;
    /// `reportRoute` gives the route of each new report (on the loop given).
    init(spool: Spool, hostname: String, defaultRoute: [RouteTarget],
         reportRoute: @escaping @Sendable (Envelope, ByteBuffer, any EventLoop) -> EventLoopFuture<[RouteTarget]>,
         schedule: QueueSchedule, threadPool: NIOThreadPool, group: any EventLoopGroup,
         retryDelay: TimeAmount = .seconds(60), metrics: RelayMetrics? = nil, shared: SharedLimits? = nil,
         resolver: DNSResolver, logger: Logger,
         credentials: @escaping @Sendable (Smarthost) async throws -> String) {
        self.spool = spool
        self.threadPool = threadPool
        let (stream, continuation) = AsyncStream.makeStream(of: SpooledMessage.self)
        spooledBounces = stream
        bounces = BounceSender(spool: spool, hostname: hostname, route: reportRoute, handOff: continuation, logger: logger)
        let writer = MaildirWriter(hostname: hostname, registry: spool.root + "/maildirs", logger: logger)
        // Delivery runs on one loop: the relay queue, the pools, the ledger and the upstream connections.
        let loop = group.next()
        self.loop = loop
        ledger = UpstreamLedger(folder: spool.upstreamsFolder, threadPool: threadPool, loop: loop, logger: logger)
        let couriers = Couriers(maildirWriter: writer,
                                pools: UpstreamPools(ledger: ledger, heloName: hostname, loop: loop, metrics: metrics,
                                                     shared: shared, credentials: credentials),
                                threadPool: threadPool, resolver: resolver, loop: loop,
                                policies: MTASTSPolicies(folder: spool.folder.root + "/mta-sts", resolver: resolver,
                                                         loop: loop, logger: logger),
                                logger: logger)
        relay = RelayQueue(spool: spool, couriers: couriers, bounces: bounces, schedule: schedule,
                           defaultRoute: defaultRoute, threadPool: threadPool, loop: loop, metrics: metrics, logger: logger)
        deliverer = GroupCommitQueue(threadPool: threadPool) { queue, batch in
            let delivery = MaildirDelivery(spool: spool, writer: writer, defaultRoute: defaultRoute, metrics: metrics,
                                           logger: logger)
            for item in delivery.deliver(batch) {
                loop.scheduleTask(in: retryDelay) { queue.submit(item) }
            }
            if writer.startsRetrying() { Self.finishMoves(of: writer, after: retryDelay, on: loop, threadPool: threadPool) }
        }
    }

    /// Has the moves into `new/` that failed after their message was
    /// acknowledged tried again every `delay` until none is left.
    private static func finishMoves(of writer: MaildirWriter, after delay: TimeAmount, on loop: any EventLoop,
                                    threadPool: NIOThreadPool) {
        loop.scheduleTask(in: delay) {
            threadPool.submit { state in
                guard case .active = state, writer.finishMoves() else { return }
                finishMoves(of: writer, after: delay, on: loop, threadPool: threadPool)
            }
        }
    }

    /// Hands spooled bounces to delivery until the relay shuts down (a
    /// bounce spooled after that is delivered on the next start), then
    /// writes the upstreams' last changes.
    public func run() async {
        for await bounce in spooledBounces.cancelOnGracefulShutdown() {
            enqueue(bounce.envelope, content: bounce.content)
        }
        await ledger.saveAll()
    }

    /// Hands over a message the spool has just made durable.
    func enqueue(_ envelope: Envelope, content: ByteBuffer) {
        if envelope.needsRelay {
            let relay = self.relay
            Task { await relay.enqueue(envelope, content: content) }
        } else {
            deliverer.submit(Item(id: envelope.id, envelope: envelope, content: content))
        }
    }

    /// Delivers a message routed only to maildirs (`!needsRelay`) before
    /// the client is answered: its maildir files are its durable copy, with
    /// no spool file written, moved and recycled. Fails when a file could
    /// not be written; the caller spools the message then, and it is retried.
    func deliverBeforeAcknowledging(_ envelope: Envelope, content: ByteBuffer, on loop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        deliverer.submit(Item(id: envelope.id, envelope: envelope, content: content, acknowledgement: promise))
        return promise.futureResult
    }

    /// Picks up every message left in the spool, e.g. after a restart, with
    /// the saved state of each recipient. Files of an earlier build are
    /// brought to this one's layout first (`Spool.upgrade`); one that
    /// cannot be waits for the next start. The relay queue learns when the
    /// last one is back, so a flush asked for meanwhile reaches them all.
    func resume(logger: Logger) {
        let relay = self.relay
        Task { [spool, deliverer, threadPool, loop] in
            do {
                let (ids, legacy) = try await threadPool.runIfActive { (try spool.folder.queuedIDs(), spool.legacyStateIDs()) }
                if !ids.isEmpty { logger.info("resuming queue", metadata: ["messages": "\(ids.count)"]) }
                // In batches: the whole queue's envelopes are never in memory at once.
                for start in stride(from: 0, to: ids.count, by: 1000) {
                    var (batch, outdated) = try await threadPool.runIfActive {
                        Self.readBack(ids[start ..< min(start + 1000, ids.count)], legacy: legacy, spool: spool, deliverer: deliverer)
                    }
                    if !outdated.isEmpty {
                        let upgraded = await spool.upgrade(outdated, on: loop, logger: logger)
                        let failed = Set(outdated.map(\.id)).subtracting(upgraded)
                        batch.removeAll { failed.contains($0.envelope.id) }
                    }
                    await relay.resume(batch)
                }
                if !legacy.isEmpty { try await threadPool.runIfActive { spool.removeLegacyStateFolder() } }
            } catch {
                logger.error("cannot read the spool", metadata: ["error": "\(error)"])
            }
            await relay.finishResuming()
        }
    }

    /// A batch of queued messages read back: those for the relay queue,
    /// with their saved state, and those of an earlier build's layout among
    /// them. The others are handed to local delivery. Blocking.
    private static func readBack(_ ids: ArraySlice<String>, legacy: Set<String>, spool: Spool, deliverer: GroupCommitQueue<Item>)
        -> (relayed: [(envelope: Envelope, state: MessageState?, size: Int)], outdated: [(id: String, state: MessageState?)]) {
        var relayed: [(envelope: Envelope, state: MessageState?, size: Int)] = []
        var outdated: [(id: String, state: MessageState?)] = []
        for id in ids {
            guard let (envelope, size, saved, sealed) = try? spool.folder.loadEnvelope(id) else {
                deliverer.submit(Item(id: id))  // read again there, and set aside if corrupt
                continue
            }
            let state = saved ?? (legacy.contains(id) ? spool.legacyState(of: id) : nil)
            guard state != nil || envelope.needsRelay else {
                deliverer.submit(Item(id: id))
                continue
            }
            if legacy.contains(id) || !sealed { outdated.append((id, state)) }
            relayed.append((envelope, state, size))
        }
        return (relayed, outdated)
    }
}

/// One batch of local deliveries, run on the thread pool: read what is not in
/// memory, write one file per message and maildir its recipients are routed
/// to, all with one flush, then forget the delivered messages in the spool
/// (or answer those delivered before their acknowledgement, as soon as the
/// flush has made their files durable).
/// Returns the items to try again later.
struct MaildirDelivery {
    let spool: Spool
    let writer: MaildirWriter
    let defaultRoute: [RouteTarget]
    let metrics: RelayMetrics?
    let logger: Logger

    /// The maildirs a message goes to: the first target of each recipient's route.
    func maildirs(for envelope: Envelope) -> [String] {
        var folders: [String] = []
        for index in envelope.recipients.indices {
            let targets = envelope.route(index) ?? defaultRoute
            if case .maildir(let path)? = targets.first ?? defaultRoute.first, !folders.contains(path) {
                folders.append(path)
            }
        }
        return folders
    }

    func deliver(_ batch: [DeliveryQueue.Item]) -> [DeliveryQueue.Item] {
        var loaded: [(item: DeliveryQueue.Item, envelope: Envelope, content: ByteBuffer)] = []
        var retries: [DeliveryQueue.Item] = []
        for item in batch {
            if let envelope = item.envelope, let content = item.content {
                loaded.append((item, envelope, content))
                continue
            }
            do {
                let entry = try spool.read(item.id)
                loaded.append((item, entry.envelope, entry.content))
            } catch {
                if !spool.setAsideIfCorrupt(item.id, after: error, logger: logger) { retries.append(item) }
            }
        }
        var files: [DurableFiles.PendingFile] = []
        var owners: [Int] = []
        var failures: [Int: SystemCallError] = [:]
        let folders = loaded.map { maildirs(for: $0.envelope) }
        for (index, entry) in loaded.enumerated() {
            for folder in folders[index] {
                do {
                    let content = entry.envelope.stamped(entry.content, targetSigners: nil)
                    files.append(try writer.pendingFile(in: folder, for: entry.envelope, content: content))
                    owners.append(index)
                } catch let error as SystemCallError {
                    failures[index] = error
                } catch {
                    failures[index] = SystemCallError("maildir", folder, errno: EIO)
                }
            }
        }
        // Durable in tmp/, a message is delivered: a start finishes its move
        // into new/ (`Maildir`), so the client is answered before the moves.
        var acknowledged: Set<Int> = []
        let results = DurableFiles.write(files) { durable in
            var incomplete = Set(failures.keys)
            for (owner, isDurable) in zip(owners, durable) where !isDurable { incomplete.insert(owner) }
            for (index, entry) in loaded.enumerated() where !incomplete.contains(index) {
                guard let acknowledgement = entry.item.acknowledgement else { continue }
                acknowledgement.succeed()
                acknowledged.insert(index)
            }
            return Set(owners.indices.filter { acknowledged.contains(owners[$0]) })
        }
        for (file, result) in results.enumerated() {
            guard case .failure(let error) = result else { continue }
            if acknowledged.contains(owners[file]) {
                writer.moveLater(files[file], after: error)
            } else {
                failures[owners[file]] = error
            }
        }
        for (index, entry) in loaded.enumerated() {
            let seconds = Date().timeIntervalSince1970 - entry.envelope.receivedAt
            let result: Result<Void, SystemCallError> = failures[index].map { .failure($0) } ?? .success(())
            switch result {
            case .success:
                if let acknowledgement = entry.item.acknowledgement {
                    if !acknowledged.contains(index) { acknowledgement.succeed() }  // a batch with no file written
                } else if let error = spool.remove(entry.envelope.id) {
                    logger.error("delivered but cannot remove from spool; it will be delivered again",
                                 metadata: ["id": "\(entry.envelope.id)", "error": "\(error)"])
                }
                for _ in entry.envelope.recipients {
                    metrics?.deliveryAttempt(upstream: "maildir", result: "delivered",
                                             seconds: seconds,
                                             reply: "delivered to the maildir")
                }
                logger.info("delivered", metadata: [
                    "id": "\(entry.envelope.id)", "to": "\(folders[index].joined(separator: ","))",
                    "recipients": "\(entry.envelope.recipients.count)",
                    "delay": "\(String(format: "%.3f", seconds))s",
                ])
            case .failure(let error):
                logger.warning("delivery deferred", metadata: [
                    "id": "\(entry.envelope.id)", "to": "maildir", "error": "\(error)",
                    "delay": "\(String(format: "%.3f", seconds))s",
                ])
                if let acknowledgement = entry.item.acknowledgement {
                    acknowledgement.fail(error)
                } else {
                    retries.append(DeliveryQueue.Item(id: entry.item.id))
                }
            }
        }
        return retries
    }
}
