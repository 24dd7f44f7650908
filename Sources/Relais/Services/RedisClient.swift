import NIOCore
import NIOPosix

/// Where a Redis server is and how to log in; what `relais.redis(address,
/// { password, username, db, timeout })` and `cluster.redis` name.
struct RedisEndpoint: Sendable, Hashable {
    var address: SocketAddress
    var username: String?
    var password: String?
    var database: Int?
    var timeout: TimeAmount = .seconds(2)

    /// `HOST:PORT`, as logs and status show it.
    var addressText: String {
        let host = address.ipAddress ?? "?"
        return (host.contains(":") ? "[\(host)]" : host) + ":\(address.port ?? 0)"
    }
}

/// One connection to a Redis server, used from one event loop: commands
/// are pipelined and replies matched in order. It connects on first use
/// (then AUTH and SELECT), and after a failure the next command connects
/// again. A command that times out closes the connection, since replies
/// after it could no longer be matched.
final class RedisClient {
    let endpoint: RedisEndpoint
    private let loop: any EventLoop
    private var channel: EventLoopFuture<any Channel>?

    init(endpoint: RedisEndpoint, loop: any EventLoop) {
        self.endpoint = endpoint
        self.loop = loop
    }

    deinit {
        channel?.whenSuccess { $0.close(promise: nil) }
    }

    /// Sends one command; fails with the server's error text for a `-ERR`
    /// reply, or with why the server could not be reached or answer in time.
    func call(_ arguments: [[UInt8]]) -> EventLoopFuture<RESPValue> {
        let connection = channel ?? connect()
        channel = connection
        let timeout = endpoint.timeout
        return connection.flatMap { [loop] channel in
            let promise = loop.makePromise(of: RESPValue.self)
            // A write on a connection that just closed never reaches the handler: fail the reply with it.
            channel.writeAndFlush(RedisRequest(arguments: arguments, reply: promise)).whenFailure { error in
                promise.fail(error is ChannelError ? RedisClientError("connection closed") : error)
            }
            let timer = loop.scheduleTask(in: timeout) {
                promise.fail(RedisClientError("timeout"))
                channel.close(promise: nil)
            }
            return promise.futureResult.always { _ in timer.cancel() }
        }.assumeIsolated().flatMapErrorThrowing { [self] error in
            forget(connection)
            throw error
        }.nonisolated()
    }

    /// After a failure the connection is dropped, so the next call dials again.
    private func forget(_ connection: EventLoopFuture<any Channel>) {
        guard channel === connection else { return }
        channel = nil
        connection.whenSuccess { $0.close(promise: nil) }
    }

    private func connect() -> EventLoopFuture<any Channel> {
        let endpoint = endpoint
        let connection = ClientBootstrap(group: loop)
            .connectTimeout(endpoint.timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RESPHandler())
                }
            }
            .connect(to: endpoint.address)
        let ready = connection.flatMap { [loop] channel -> EventLoopFuture<any Channel> in
            var setup: [[[UInt8]]] = []
            if let password = endpoint.password {
                setup.append([Array("AUTH".utf8)] + (endpoint.username.map { [Array($0.utf8)] } ?? []) + [Array(password.utf8)])
            }
            if let database = endpoint.database { setup.append([Array("SELECT".utf8), Array("\(database)".utf8)]) }
            let replies = setup.map { command -> EventLoopFuture<RESPValue> in
                let promise = loop.makePromise(of: RESPValue.self)
                channel.writeAndFlush(RedisRequest(arguments: command, reply: promise), promise: nil)
                return promise.futureResult
            }
            return EventLoopFuture.whenAllSucceed(replies, on: loop).map { _ in channel }.flatMapError { error in
                channel.close(promise: nil)
                return loop.makeFailedFuture(error)
            }
        }
        ready.assumeIsolated().whenSuccess { [weak self] channel in
            channel.closeFuture.assumeIsolated().whenComplete { _ in self?.forget(ready) }
        }
        return ready
    }
}

/// Why a Redis call failed; the description is what Lua sees.
struct RedisClientError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A command and the promise its reply completes.
struct RedisRequest {
    var arguments: [[UInt8]]
    var reply: EventLoopPromise<RESPValue>
}

/// Encodes commands, decodes replies, and pairs them in order; an error
/// reply fails its promise with the server's text.
private final class RESPHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private var received = ByteBuffer()
    private var waiting: [EventLoopPromise<RESPValue>] = []
    private var nextReply = 0

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        var bytes = context.channel.allocator.buffer(capacity: 64)
        RESPValue.command(request.arguments, into: &bytes)
        waiting.append(request.reply)
        context.write(wrapOutboundOut(bytes), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        received.writeBuffer(&bytes)
        do {
            while let value = try RESPValue.next(from: &received) {
                guard nextReply < waiting.count else { throw RESPError("a reply nobody asked for") }
                let promise = waiting[nextReply]
                nextReply += 1
                if case .error(let text) = value { promise.fail(RedisClientError(text)) } else { promise.succeed(value) }
            }
            if nextReply == waiting.count {
                waiting.removeAll(keepingCapacity: true)
                nextReply = 0
            }
            received.discardReadBytes()
        } catch {
            failAll(error)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisClientError("connection closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        for promise in waiting[nextReply...] { promise.fail(error) }
        waiting.removeAll()
        nextReply = 0
    }
}
