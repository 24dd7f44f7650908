import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RelaisTLS
import SMTPCore
import ServiceLifecycle
import UnixSignals

/// The running relay: SMTP listeners on a multi-threaded event loop group,
/// the policy (one Lua state per loop), the spool and the delivery queue on
/// a thread pool. `start` binds and resumes the queue; `reload` swaps in a
/// new policy generation. As a service it serves until the relay shuts down
/// gracefully, then lets transactions in flight finish; `services` are all
/// the relay's services for one group.
public final class RelaisServer: Service {
    private let source: PolicySource
    private let overrides: PolicySettings
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    /// The group was made here (not handed in), so it is shut down here.
    private let ownsGroup: Bool
    private let threadPool: NIOThreadPool
    /// Reloads load the policy here, never behind the spool's disk work.
    private let policyLoader = NIOThreadPool(numberOfThreads: 1)
    private let store: PolicyStore
    private let tracker: ConnectionTracker
    /// What `GET /metrics` shows.
    public let metrics: RelayMetrics
    /// Every hook call's duration, summarised in the log at stop.
    public let hookTimings: HookTimings
    private let listeners = NIOLockedValueBox<[String: any Channel]>([:])
    /// The policy's files as `start` found them (`PolicyWatcher.fingerprints`).
    private let loadedFiles = NIOLockedValueBox<[String: String]?>(nil)
    private let admin = NIOLockedValueBox<(any Channel)?>(nil)
    private let adminHTTP = NIOLockedValueBox<(any Channel)?>(nil)
    private let services = NIOLockedValueBox<ServerServices?>(nil)
    private let deliveryQueue = NIOLockedValueBox<DeliveryQueue?>(nil)
    /// The cluster's shared limits, when `cluster` is configured (made by `start`).
    private let sharedLimits = NIOLockedValueBox<SharedLimits?>(nil)
    /// The DNS cache and TLS contexts every generation's hooks share.
    private let hookServices: HookServices
    /// Serialises reloads (SIGHUP and file changes may coincide).
    private let reloading = NIOLock()

    /// Loads the policy; throws with `file:line` when it does not load.
    /// `group` (default: a group of its own) carries the connections; hand
    /// in the one that also runs Swift concurrency's jobs, so a delivery
    /// task and the I/O it awaits share threads. Blocking: call off the
    /// event loops.
    public init(source: PolicySource, overrides: PolicySettings = PolicySettings(), logger: Logger,
                group: MultiThreadedEventLoopGroup? = nil) throws {
        self.source = source
        self.overrides = overrides
        self.logger = logger
        let metrics = RelayMetrics()
        self.metrics = metrics
        self.hookTimings = HookTimings(metrics: metrics)
        let hookServices = HookServices(metrics: metrics)
        self.hookServices = hookServices
        let group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        self.group = group
        self.ownsGroup = self.group !== MultiThreadedEventLoopGroup.singleton
        // Flushes wait for the disk, holding a thread each: one per queue (spool writes, removals, maildir writes).
        self.threadPool = NIOThreadPool(numberOfThreads: max(4, 2 * System.coreCount))
        do {
            let generation = try PolicyGeneration.load(source, overrides: overrides, base: ServerConfiguration(),
                                                       loops: Array(group.makeIterator()), number: 1, services: hookServices, logger: logger)
            self.store = PolicyStore(generation)
        } catch {
            if ownsGroup { try? group.syncShutdownGracefully() }
            throw error
        }
        let configuration = store.generation.configuration
        self.tracker = ConnectionTracker(maxConnections: configuration.maxConnections,
                                         maxPerIP: configuration.maxConnectionsPerIP)
        RelaisLogHandler.use(configuration.logFormat)
        metrics.policyLoaded(generation: 1)
    }

    public var generation: PolicyGeneration { store.generation }

    /// Opens the spool and maildir, binds every listener, then resumes
    /// queued deliveries. Returns the bound addresses (useful with port 0).
    @discardableResult
    public func start() throws -> [SocketAddress] {
        threadPool.start()
        policyLoader.start()
        let configuration = store.generation.configuration
        // Before listening: a change made once clients can connect is seen even before the watcher runs.
        loadedFiles.withLockedValue { $0 = PolicyWatcher.fingerprints(of: store.generation.watchedFiles) }
        let spool = try Spool(root: configuration.spoolDirectory, threadPool: threadPool, metrics: metrics, logger: logger)
        if let error = spool.journalUnavailable {
            logger.warning("spool journal unavailable: every message waits for a flush of the whole filesystem",
                           metadata: ["error": "\(error)"])
        }
        if spool.removedAfterCrash > 0 {
            logger.warning("queued files of messages delivered before a crash were removed, as the spool's journal records",
                           metadata: ["messages": "\(spool.removedAfterCrash)"])
        }
        if spool.restoredFromJournal > 0 {
            logger.warning("queued files a crash lost were written back from the spool's journal",
                           metadata: ["messages": "\(spool.restoredFromJournal)"])
        }
        let credentialLoop = group.next()
        _ = try Maildir(root: configuration.maildirDirectory, hostname: configuration.hostname)
        let shared = configuration.cluster.map { settings in
            SharedLimits(settings: settings, loop: group.next(), stateFolder: spool.upstreamsFolder, metrics: metrics,
                         logger: logger)
        }
        sharedLimits.withLockedValue { $0 = shared }
        let queue = DeliveryQueue(spool: spool, hostname: configuration.hostname,
                                  defaultRoute: configuration.effectiveDefaultRoute,
                                  reportRoute: { [store, hookTimings, logger] envelope, content, loop in
                                      store.generation.route(report: envelope, content: content, on: loop,
                                                             timings: hookTimings, logger: logger)
                                  },
                                  schedule: configuration.queue, threadPool: threadPool, group: group,
                                  metrics: metrics, shared: shared,
                                  resolver: try hookServices.resolver(servers: configuration.dnsServers,
                                                                      timeout: configuration.dnsTimeout),
                                  logger: logger) { [store] smarthost in
            // One loop's state answers every time, so a token function can cache its token.
            try await store.generation.credential(for: smarthost.name, on: credentialLoop)
        }
        deliveryQueue.withLockedValue { $0 = queue }
        do {
            let channel = try AdminChannel.bind(spool: configuration.spoolDirectory, queue: queue, group: group, logger: logger)
            admin.withLockedValue { $0 = channel }
        } catch {
            logger.warning("admin channel unavailable; relais queue flush/delete work only while the relay is stopped",
                           metadata: ["socket": "\(AdminChannel.socketPath(spool: configuration.spoolDirectory))", "error": "\(error)"])
        }
        services.withLockedValue {
            $0 = ServerServices(store: store, timings: hookTimings, spool: spool, queue: queue, tracker: tracker,
                                logger: logger, metrics: metrics)
        }
        logger.info("policy loaded", metadata: generationMetadata(store.generation))
        let addresses = try Self.listeners(of: configuration).compactMap { try bind($0) }
        if let listen = configuration.adminListen {
            try bindAdmin(listen, token: configuration.adminToken, spool: spool, queue: queue)
        }
        // After listening: a long queue is scanned while mail is already taken.
        queue.resume(logger: logger)
        return addresses
    }

    /// The admin HTTP endpoint (metrics, health, queue and upstream API).
    private func bindAdmin(_ listen: String, token: String?, spool: Spool, queue: DeliveryQueue) throws {
        let (listeners, queueFolder) = (self.listeners, spool.queueFolder)
        var routes = AdminRoutes(token: token, metrics: metrics, queue: queue, spool: spool.folder, threadPool: threadPool) {
            if listeners.withLockedValue({ $0.isEmpty }) { return "not listening" }
            if access(queueFolder, W_OK) != 0 { return "spool not writable" }
            return nil
        }
        routes.cluster = sharedLimits.withLockedValue { $0 }
        routes.sharedUpstreams = { [store] in
            var seen = Set<String>()
            return store.generation.declaredTargets.compactMap { target -> Smarthost? in
                guard case .smarthost(let smarthost) = target, smarthost.isShared, seen.insert(smarthost.name).inserted else { return nil }
                return smarthost
            }
        }
        let channel = try AdminServer.bind(try ServerConfiguration.socketAddress(listen), routes: routes, group: group).wait()
        adminHTTP.withLockedValue { $0 = channel }
        if let local = channel.localAddress {
            logger.info("admin endpoint listening", metadata: ["address": "\(local.ipAddress ?? listen):\(local.port ?? 0)",
                                                               "token": "\(token == nil ? "none" : "required")"])
        }
    }

    /// Listener keys: `HOST:PORT` for plain ones, `tls:HOST:PORT` for implicit TLS.
    private static func listeners(of configuration: ServerConfiguration) -> [String] {
        configuration.listen + configuration.listenTLS.map { "tls:" + $0 }
    }

    private func bind(_ key: String) throws -> SocketAddress? {
        guard let services = services.withLockedValue({ $0 }) else { return nil }
        let implicitTLS = key.hasPrefix("tls:")
        let text = implicitTLS ? String(key.dropFirst(4)) : key
        let address = try ServerConfiguration.socketAddress(text)
        let store = self.store
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // At least 4 KiB per read: the default shrinks to 64 bytes after a few commands, and a small message's text then takes two reads.
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 4096, maximum: 65536))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if implicitTLS, let tlsContext = store.generation.tlsContext {
                        try channel.pipeline.syncOperations.addHandler(try TLSHandler(context: tlsContext))
                    }
                    try channel.pipeline.syncOperations.addHandler(SMTPServerHandler(services: services, channel: channel))
                }
            }
            .bind(to: address)
            .wait()
        listeners.withLockedValue { $0[key] = channel }
        guard let local = channel.localAddress else { return nil }
        logger.info("listening", metadata: ["address": "\(local.ipAddress ?? text):\(local.port ?? 0)",
                                            "tls": "\(implicitTLS ? "implicit" : "starttls-capable")"])
        return local
    }

    /// Loads the policy again. On success new transactions use it, and
    /// listeners follow its `listen` list; on failure the running generation
    /// stays and the error (with `file:line`) is logged. Blocking.
    @discardableResult
    public func reload() -> Bool {
        reloading.withLock {
            SystemdNotifier.notify("RELOADING=1")
            defer { SystemdNotifier.notify("READY=1") }
            let started = NIODeadline.now()
            let current = store.generation
            let next: PolicyGeneration
            do {
                next = try PolicyGeneration.load(source, overrides: overrides, base: ServerConfiguration(),
                                                 loops: Array(group.makeIterator()), number: current.number + 1,
                                                 services: hookServices, logger: logger)
            } catch {
                logger.error("policy reload failed; generation \(current.number) keeps serving", metadata: ["error": "\(error)"])
                metrics.reloadFailed()
                return false
            }
            store.replace(with: next)
            metrics.policyLoaded(generation: next.number)
            RelaisLogHandler.use(next.configuration.logFormat)
            var metadata = generationMetadata(next)
            metadata["duration"] = "\(String(format: "%.1f", Double((NIODeadline.now() - started).nanoseconds) / 1e6))ms"
            logger.info("policy reloaded", metadata: metadata)
            reconcileListeners(from: current.configuration, to: next.configuration)
            return true
        }
    }

    private func reconcileListeners(from old: ServerConfiguration, to new: ServerConfiguration) {
        for (setting, changed) in [
            ("spool", old.spoolDirectory != new.spoolDirectory), ("maildir", old.maildirDirectory != new.maildirDirectory),
            ("max_connections", old.maxConnections != new.maxConnections),
            ("max_connections_per_ip", old.maxConnectionsPerIP != new.maxConnectionsPerIP),
        ] where changed {
            logger.warning("\(setting) changed; it takes effect after a restart")
        }
        let oldListeners = Self.listeners(of: old)
        let newListeners = Self.listeners(of: new)
        let removed = Set(oldListeners).subtracting(newListeners)
        for text in removed {
            if let channel = listeners.withLockedValue({ $0.removeValue(forKey: text) }) {
                channel.close(promise: nil)
                logger.info("stopped listening", metadata: ["address": "\(text)"])
            }
        }
        for text in newListeners where !oldListeners.contains(text) {
            do {
                _ = try bind(text)
            } catch {
                logger.error("cannot listen on \(text)", metadata: ["error": "\(error)"])
            }
        }
    }

    private func generationMetadata(_ generation: PolicyGeneration) -> Logger.Metadata {
        let hooks = HookStage.allCases.compactMap { stage -> String? in
            let count = generation.hookLocations[stage]?.count ?? 0
            return count > 0 ? "\(stage.rawValue)=\(count)" : nil
        }
        return ["generation": "\(generation.number)", "source": "\(generation.source.displayName)",
                "hooks": "\(hooks.isEmpty ? "none" : hooks.joined(separator: ","))"]
    }

    /// The relay's services in start order (they stop in reverse): the
    /// delivery queue, the listeners, and the reload watcher (the policy's
    /// files when `watchingFiles`, and `hangups`). Call after `start`.
    public func services(watchingFiles: Bool, hangups: UnixSignalsSequence) -> [any Service] {
        let watcher = PolicyWatcher(watchesFiles: watchingFiles, hangups: hangups, baseline: loadedFiles.withLockedValue { $0 },
                                    files: { [store] in store.generation.watchedFiles }) { [self] in
            _ = try? await policyLoader.runIfActive { self.reload() }
        }
        let cluster: [any Service] = sharedLimits.withLockedValue { $0 }.map { [$0] } ?? []
        return cluster + (deliveryQueue.withLockedValue { $0 }.map { [$0] } ?? []) + [self, watcher]
    }

    /// Serves until the relay shuts down gracefully, then drains.
    public func run() async {
        SystemdNotifier.notify("READY=1")
        try? await gracefulShutdown()
        SystemdNotifier.notify("STOPPING=1")
        await drain()
    }

    /// Graceful stop: no new connections; each open one finishes its
    /// transaction in flight and is closed; after the grace period the rest
    /// are closed.
    private func drain() async {
        let channels = listeners.withLockedValue { channels in
            defer { channels = [:] }
            return Array(channels.values)
        }
        for channel in channels { try? await channel.close() }
        if let channel = admin.withLockedValue({ $0 }) { try? await channel.close() }
        if let channel = adminHTTP.withLockedValue({ $0 }) { try? await channel.close() }
        let open = tracker.channels
        logger.info("stopping", metadata: ["connections": "\(open.count)"])
        for channel in open { channel.pipeline.fireUserInboundEventTriggered(DrainConnectionEvent()) }
        let grace = store.generation.configuration.shutdownGracePeriod
        await withTaskGroup(of: Void.self) { [tracker] group in
            group.addTask { await tracker.waitUntilEmpty() }
            group.addTask {
                guard (try? await Task.sleep(nanoseconds: UInt64(grace.nanoseconds))) != nil else { return }
                for channel in tracker.channels { channel.close(promise: nil) }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Releases the threads once every service has stopped. Blocking: call
    /// from outside the event loops.
    public func shutdown() {
        try? policyLoader.syncShutdownGracefully()
        try? threadPool.syncShutdownGracefully()
        if ownsGroup { try? group.syncShutdownGracefully() }
        // Once no delivery can finish any more: with the thread pool
        // stopped, the files are recycled here, on this thread.
        if let spool = services.withLockedValue({ $0 })?.spool {
            spool.recycleDelivered()
            if let error = spool.checkpointAtStop() {
                logger.error("cannot flush the spool at stop; the next start replays its journal", metadata: ["error": "\(error)"])
            }
        }
        if hookTimings.summary.calls > 0 {
            logger.info("hook timings", metadata: ["summary": "\(hookTimings.summary)"])
        }
        logger.info("stopped")
    }
}

extension PolicySource {
    /// The file path, or the built-in policy's name.
    public var displayName: String {
        switch self {
        case .file(let path): return path
        case .embedded(let name, _): return "(built-in) \(name)"
        }
    }
}
