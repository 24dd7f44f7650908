import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RelaisTLS
import SMTPCore

/// Why an outbound conversation stopped.
enum SMTPClientError: Error, CustomStringConvertible {
    case connect(String)
    case timeout(stage: String)
    case closed(stage: String)
    case unexpected(SMTPReply, stage: String)
    case malformed(String)
    case tls(String)
    case refused(String)

    var description: String {
        switch self {
        case .connect(let reason): return "cannot connect: \(reason)"
        case .timeout(let stage): return "timeout waiting for the reply to \(stage)"
        case .closed(let stage): return "connection closed by the upstream during \(stage)"
        case .unexpected(let reply, let stage): return "\(stage) answered \(reply)"
        case .malformed(let reason): return "malformed reply: \(reason)"
        case .tls(let reason): return "TLS failed: \(reason)"
        case .refused(let reason): return reason
        }
    }
}

/// Collects the upstream's replies and hands them to whoever waits for
/// them, in order, each within its deadline. Lives on the connection's
/// event loop. One timer serves every wait: armed for the earliest
/// deadline, it finds on firing whether a wait is overdue (it then fails
/// them all and closes) or re-arms for the earliest deadline still open.
final class SMTPClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private struct Expectation {
        var count: Int
        var stage: String
        var deadline: NIODeadline
        var promise: EventLoopPromise<[SMTPReply]>
    }

    private var parser = SMTPReplyParser()
    private var received: [SMTPReply] = []
    private var waiting = CircularBuffer<Expectation>()
    private var failure: SMTPClientError?
    private var context: ChannelHandlerContext?
    private var timer: (task: Scheduled<Void>, deadline: NIODeadline)?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.task.cancel()
        self.context = nil
    }

    func expect(_ count: Int, stage: String, within limit: TimeAmount, promise: EventLoopPromise<[SMTPReply]>) {
        if let failure { return promise.fail(failure) }
        let deadline = NIODeadline.now() + limit
        waiting.append(Expectation(count: count, stage: stage, deadline: deadline, promise: promise))
        deliver()
        if !waiting.isEmpty, timer.map({ deadline < $0.deadline }) ?? true { arm(for: deadline) }
    }

    private func arm(for deadline: NIODeadline) {
        guard let context else { return }
        timer?.task.cancel()
        let task = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            guard let context = self.context else { return }
            let now = NIODeadline.now()
            if let overdue = waiting.first(where: { $0.deadline <= now }) {
                fail(.timeout(stage: overdue.stage), context: context)
            } else if let next = waiting.map(\.deadline).min() {
                arm(for: next)
            }
        }
        timer = (task, deadline)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        do {
            while let reply = try parser.parse(&bytes) { received.append(reply) }
        } catch {
            fail(.malformed(error.reason), context: context)
            return
        }
        deliver()
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(.closed(stage: waiting.first?.stage ?? "idle"), context: context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? TLSError { return fail(.tls(error.description), context: context) }
        fail(.closed(stage: "\(waiting.first?.stage ?? "idle") (\(error))"), context: context)
    }

    private func deliver() {
        while let first = waiting.first, received.count >= first.count {
            waiting.removeFirst()
            let replies = Array(received.prefix(first.count))
            received.removeFirst(first.count)
            first.promise.succeed(replies)
        }
    }

    private func fail(_ error: SMTPClientError, context: ChannelHandlerContext) {
        if failure == nil { failure = error }
        timer?.task.cancel()
        timer = nil
        let pending = waiting
        waiting.removeAll()
        for expectation in pending {
            expectation.promise.fail(failure ?? error)
        }
        context.close(promise: nil)
    }
}

/// One connection to an upstream, used by one delivery at a time: sends
/// commands (pipelined when offered) and waits for replies with a timeout
/// per stage. After any error the connection is closed and not reused.
final class SMTPClientConnection: Sendable {
    private let channel: any Channel
    private let handler: NIOLoopBound<SMTPClientHandler>
    private let timeout: TimeAmount
    private let state = NIOLockedValueBox(ConnectionState())

    struct ConnectionState {
        var capabilities = ServerCapabilities()
        var messagesSent = 0
        var broken = false
        /// A transaction was left unfinished: RSET before the next one.
        var needsReset = false
    }

    private init(channel: any Channel, handler: NIOLoopBound<SMTPClientHandler>, timeout: TimeAmount) {
        self.channel = channel
        self.handler = handler
        self.timeout = timeout
    }

    /// Connects (with TLS from the start for `tls = "implicit"`), reads the
    /// greeting, introduces itself with EHLO (HELO if refused), starts TLS
    /// as the smarthost asks, and authenticates when it has credentials.
    static func open(to smarthost: Smarthost, heloName: String, group: any EventLoopGroup, tlsContext: TLSContext?,
                     credential: @escaping @Sendable () async throws -> String) async throws -> SMTPClientConnection {
        let timeout = TimeAmount.nanoseconds(Int64(smarthost.timeout * 1e9))
        let connectTimeout = TimeAmount.nanoseconds(Int64(smarthost.connectionTimeout * 1e9))
        let channel: any Channel
        let implicitTLS = smarthost.tls == .implicit ? tlsContext : nil
        let host = smarthost.address ?? smarthost.host
        do {
            let bootstrap = ClientBootstrap(group: group)
                .connectTimeout(connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let implicitTLS {
                            try channel.pipeline.syncOperations.addHandler(TLSHandler(context: implicitTLS, serverName: smarthost.host, dane: smarthost.dane))
                        }
                        try channel.pipeline.syncOperations.addHandler(SMTPClientHandler())
                    }
                }
            // An address (an MX host's, resolved already) needs no resolver and its thread hop.
            if let address = try? SocketAddress(ipAddress: host, port: smarthost.port) {
                channel = try await bootstrap.connect(to: address).get()
            } else {
                channel = try await bootstrap.connect(host: host, port: smarthost.port).get()
            }
        } catch {
            throw SMTPClientError.connect("\(host):\(smarthost.port): \(error)")
        }
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: SMTPClientHandler.self), eventLoop: channel.eventLoop)
        }.get()
        let connection = SMTPClientConnection(channel: channel, handler: handler, timeout: timeout)
        do {
            // A server that accepts and never greets is as dead as one that refuses.
            let greeting = try await connection.exchange(pieces: EmptyCollection(), replies: 1, stage: "greeting",
                                                         within: connectTimeout)[0]
            guard greeting.code == 220 else { throw SMTPClientError.unexpected(greeting, stage: "greeting") }
            try await connection.hello(heloName)
            var encrypted = implicitTLS != nil
            if [.starttls, .opportunistic].contains(smarthost.tls), let tlsContext {
                encrypted = try await connection.startTLS(tlsContext, smarthost: smarthost, heloName: heloName)
            }
            if let username = smarthost.authUsername {
                guard encrypted || (smarthost.tls == .none && smarthost.allowInsecureAuth) else {
                    throw SMTPClientError.refused("refusing to send credentials over an unencrypted connection")
                }
                try await connection.authenticate(username, smarthost: smarthost, secret: try await credential())
            }
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    private func hello(_ heloName: String) async throws {
        let hello = try await exchange([.ehlo(heloName)], stage: "EHLO")[0]
        if hello.isPositive {
            state.withLockedValue { $0.capabilities = ServerCapabilities(ehloReply: hello) }
            return
        }
        let fallback = try await exchange([.helo(heloName)], stage: "HELO")[0]
        guard fallback.isPositive else { throw SMTPClientError.unexpected(fallback, stage: "HELO") }
        state.withLockedValue { $0.capabilities = ServerCapabilities() }
    }

    /// STARTTLS (RFC 3207), then EHLO again. Returns whether the session is
    /// now encrypted; throws when `tls = "starttls"` cannot be had.
    private func startTLS(_ context: TLSContext, smarthost: Smarthost, heloName: String) async throws -> Bool {
        let required = smarthost.tls == .starttls
        guard capabilities.offers("STARTTLS") else {
            if required { throw SMTPClientError.tls("\(smarthost.host) does not offer STARTTLS, which tls = \"starttls\" requires") }
            return false
        }
        let reply = try await exchange([.startTLS], stage: "STARTTLS")[0]
        guard reply.code == 220 else {
            if required { throw SMTPClientError.unexpected(reply, stage: "STARTTLS") }
            return false
        }
        let channel = self.channel
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(TLSHandler(context: context, serverName: smarthost.host, dane: smarthost.dane), position: .first)
        }.get()
        try await hello(heloName)
        return true
    }

    /// AUTH with XOAUTH2 when asked, else PLAIN or LOGIN as offered (RFC 4954).
    private func authenticate(_ username: String, smarthost: Smarthost, secret: String) async throws {
        let offered = capabilities.authMechanisms
        let mechanism = smarthost.authMechanism ?? (offered.contains("PLAIN") || !offered.contains("LOGIN") ? .plain : .login)
        func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        var reply: SMTPReply
        switch mechanism {
        case .xoauth2:
            let response = base64("user=\(username)\u{1}auth=Bearer \(secret)\u{1}\u{1}")
            reply = try await exchange([.auth(mechanism: "XOAUTH2", initialResponse: response)], stage: "AUTH")[0]
            if reply.code == 334 {
                // The challenge is a base64 JSON error (RFC 7628 3.2.3); an empty line ends the exchange.
                let detail = Data(base64Encoded: reply.lines.joined()).map { String(decoding: $0, as: UTF8.self) } ?? reply.text
                _ = try? await exchange(response: "", stage: "AUTH")
                throw SMTPClientError.refused("XOAUTH2 refused by \(smarthost.host): \(detail)")
            }
        case .login:
            reply = try await exchange([.auth(mechanism: "LOGIN", initialResponse: nil)], stage: "AUTH")[0]
            if reply.code == 334 { reply = try await exchange(response: base64(username), stage: "AUTH") }
            if reply.code == 334 { reply = try await exchange(response: base64(secret), stage: "AUTH") }
        case .plain:
            let response = base64("\u{0}\(username)\u{0}\(secret)")
            reply = try await exchange([.auth(mechanism: "PLAIN", initialResponse: response)], stage: "AUTH")[0]
        }
        guard reply.code == 235 else { throw SMTPClientError.unexpected(reply, stage: "AUTH \(mechanism.rawValue) as \(username)") }
    }

    /// What the upstream offered in its last EHLO reply.
    var capabilities: ServerCapabilities { state.withLockedValue { $0.capabilities } }
    var messagesSent: Int { state.withLockedValue { $0.messagesSent } }
    var isUsable: Bool { channel.isActive && !state.withLockedValue { $0.broken } }
    var needsReset: Bool {
        get { state.withLockedValue { $0.needsReset } }
        set { state.withLockedValue { $0.needsReset = newValue } }
    }
    func countMessage() { state.withLockedValue { $0.messagesSent += 1 } }

    /// Sends the commands in one write (pipelined when there are several)
    /// and waits for one reply each.
    func exchange(_ commands: [SMTPCommand], stage: String) async throws -> [SMTPReply] {
        var bytes = channel.allocator.buffer(capacity: 64 * commands.count)
        for command in commands {
            bytes.writeString(command.line)
            bytes.writeStaticString("\r\n")
        }
        return try await exchange(bytes: bytes, replies: commands.count, stage: stage)
    }

    /// Sends one SASL response line (RFC 4954 4) and waits for the reply.
    func exchange(response: String, stage: String) async throws -> SMTPReply {
        try await exchange(bytes: ByteBuffer(string: response + "\r\n"), replies: 1, stage: stage)[0]
    }

    /// Sends raw bytes and waits for `replies` replies.
    func exchange(bytes: ByteBuffer, replies: Int, stage: String) async throws -> [SMTPReply] {
        try await exchange(pieces: CollectionOfOne(bytes), replies: replies, stage: stage)
    }

    /// Writes `pieces` one after the other, in one flush (none is copied
    /// into another: the socket gathers them), and waits for `replies`
    /// replies, within `limit` (the per-reply timeout when nil).
    func exchange(pieces: some Collection<ByteBuffer> & Sendable, replies: Int, stage: String,
                  within limit: TimeAmount? = nil) async throws -> [SMTPReply] {
        let loop = channel.eventLoop
        let promise = loop.makePromise(of: [SMTPReply].self)
        let (channel, handler, timeout) = (self.channel, self.handler, limit ?? self.timeout)
        let send: @Sendable () -> Void = {
            handler.value.expect(replies, stage: stage, within: timeout, promise: promise)
            guard !pieces.isEmpty else { return }
            for piece in pieces { channel.write(piece, promise: nil) }
            channel.flush()
        }
        // Delivery tasks run on this loop: most exchanges start here, with no task to hand over.
        if loop.inEventLoop { send() } else { loop.execute(send) }
        do {
            return try await promise.futureResult.get()
        } catch {
            state.withLockedValue { $0.broken = true }
            throw error
        }
    }

    func close() {
        state.withLockedValue { $0.broken = true }
        channel.close(promise: nil)
    }

    /// Says QUIT politely, then closes; returns once the socket is closed.
    func quit() async {
        _ = try? await exchange([.quit], stage: "QUIT")
        close()
        try? await channel.closeFuture.get()
    }
}
