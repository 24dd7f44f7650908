import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SMTPCore

/// The running relay: SMTP listeners on a multi-threaded event loop group,
/// the spool and the delivery queue on a thread pool. `start` binds and
/// resumes the queue; `stop` stops accepting, lets transactions in flight
/// finish, and closes everything.
public final class RelaisServer: Sendable {
    public let configuration: ServerConfiguration
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let threadPool: NIOThreadPool
    private let tracker: ConnectionTracker
    private let listeners = NIOLockedValueBox<[any Channel]>([])

    public init(configuration: ServerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        self.threadPool = NIOThreadPool(numberOfThreads: max(2, System.coreCount))
        self.tracker = ConnectionTracker(maxConnections: configuration.maxConnections,
                                         maxPerIP: configuration.maxConnectionsPerIP)
    }

    /// Opens the spool and maildir, resumes queued deliveries and binds every
    /// listener. Returns the bound addresses (useful with port 0).
    public func start() throws -> [SocketAddress] {
        threadPool.start()
        let spool = try Spool(root: configuration.spoolDirectory, threadPool: threadPool)
        let maildir = try Maildir(root: configuration.maildirDirectory, hostname: configuration.hostname)
        let queue = DeliveryQueue(spool: spool, maildir: maildir, threadPool: threadPool,
                                  timerLoop: group.next(), logger: logger)
        queue.resume(logger: logger)
        let services = ServerServices(configuration: configuration, spool: spool, queue: queue,
                                      tracker: tracker, logger: logger)
        var bound: [SocketAddress] = []
        for text in configuration.listen {
            let address = try ServerConfiguration.socketAddress(text)
            let channel = try ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let remote = channel.remoteAddress
                        let handler = SMTPServerHandler(services: services, clientIP: remote?.ipAddress ?? "unknown",
                                                        clientPort: remote?.port ?? 0)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .bind(to: address)
                .wait()
            listeners.withLockedValue { $0.append(channel) }
            if let local = channel.localAddress {
                bound.append(local)
                logger.info("listening", metadata: ["address": "\(local.ipAddress ?? text):\(local.port ?? 0)"])
            }
        }
        return bound
    }

    /// Graceful stop: no new connections; each open one finishes its
    /// transaction in flight and is closed; after the grace period the rest
    /// are closed. Blocking: call from outside the event loops.
    public func stop() {
        let channels = listeners.withLockedValue { channels in
            defer { channels = [] }
            return channels
        }
        for channel in channels { try? channel.close().wait() }
        let open = tracker.channels
        logger.info("stopping", metadata: ["connections": "\(open.count)"])
        for channel in open { channel.pipeline.fireUserInboundEventTriggered(DrainConnectionEvent()) }
        let deadline = NIODeadline.now() + configuration.shutdownGracePeriod
        while tracker.count > 0 && NIODeadline.now() < deadline {
            usleep(20_000)
        }
        for channel in tracker.channels { channel.close(promise: nil) }
        try? threadPool.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
        logger.info("stopped")
    }
}
