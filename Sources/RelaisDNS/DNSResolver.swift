import NIOCore
import NIOPosix

/// A DNS client that asks recursive servers (RFC 1034 5.3.1), over
/// SwiftNIO: one UDP query per lookup (random id and source port, the
/// answer must come from the server and match the question), TCP when the answer is truncated, the next server on a
/// timeout, and a shared `DNSCache`. Non-blocking: everything runs on the
/// event loop given.
public struct DNSResolver: Sendable {
    public let servers: [SocketAddress]
    /// How long one server has to answer.
    public let timeout: TimeAmount
    public let cache: DNSCache

    public init(servers: [SocketAddress], timeout: TimeAmount, cache: DNSCache) {
        self.servers = servers
        self.timeout = timeout
        self.cache = cache
    }

    /// `HOST`, `HOST:PORT` or `[IPv6]:PORT` (port 53 by default), numeric only.
    public static func serverAddress(_ text: String) throws -> SocketAddress {
        var host = text
        var port = 53
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.hasPrefix(":") { port = Int(rest.dropFirst()) ?? -1 }
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            host = String(text[..<colon])
            port = Int(text[text.index(after: colon)...]) ?? -1
        }
        guard (1...65535).contains(port) else { throw DNSError.badName(text) }
        return try SocketAddress(ipAddress: host, port: port)
    }

    /// The cached result, if any (no I/O).
    public func cached(_ name: String, _ type: DNSRecordType) -> Result<DNSAnswer, DNSError>? {
        cache.lookup(name, type)
    }

    /// Looks `name` up from a task: the answer or the `DNSError`.
    public func answer(_ name: String, _ type: DNSRecordType, on loop: any EventLoop) async -> Result<DNSAnswer, DNSError> {
        do {
            return .success(try await lookup(name, type, on: loop).get())
        } catch {
            return .failure(error as? DNSError ?? .timeout)
        }
    }

    /// The IPv6, then IPv4 addresses of `host` (none when it has none or
    /// the lookups fail), and whether DNSSEC validated every answer that
    /// had some (what decides whether its TLSA records count, RFC 7672 2.2.2).
    public func addresses(of host: String, on loop: any EventLoop) async -> HostAddresses {
        var found = HostAddresses(addresses: [], authenticated: true)
        for type in [DNSRecordType.aaaa, .a] {
            guard case .success(let answer) = await answer(host, type, on: loop), !answer.records.isEmpty else { continue }
            found.authenticated = found.authenticated && answer.authenticated
            for record in answer.records {
                switch record {
                case .a(let address), .aaaa(let address): found.addresses.append(address)
                default: break
                }
            }
        }
        found.authenticated = found.authenticated && !found.addresses.isEmpty
        return found
    }

    /// Looks `name` up; fails with a `DNSError`.
    public func lookup(_ name: String, _ type: DNSRecordType, on loop: any EventLoop) -> EventLoopFuture<DNSAnswer> {
        if let cached = cached(name, type) { return loop.makeCompletedFuture(cached.mapError { $0 as any Error }) }
        let query: [UInt8]
        let id = UInt16.random(in: 0...UInt16.max)
        do { query = try DNSMessage.query(id: id, name: name, type: type) } catch {
            return loop.makeFailedFuture(error)
        }
        let question = DNSQuestion(id: id, name: DNSMessage.canonical(name), type: type)
        return ask(servers[...], query, question, on: loop).flatMapThrowing { message in
            try interpret(message, question)
        }
    }

    /// Tries each server in turn until one answers.
    private func ask(_ remaining: ArraySlice<SocketAddress>, _ query: [UInt8], _ question: DNSQuestion,
                     on loop: any EventLoop) -> EventLoopFuture<DNSMessage> {
        guard let server = remaining.first else { return loop.makeFailedFuture(DNSError.timeout) }
        return udp(server, query, question, on: loop).flatMap { message in
            message.truncated ? tcp(server, query, question, on: loop) : loop.makeSucceededFuture(message)
        }.flatMapError { error in
            remaining.count > 1 ? ask(remaining.dropFirst(), query, question, on: loop) : loop.makeFailedFuture(error)
        }
    }

    private func udp(_ server: SocketAddress, _ query: [UInt8], _ question: DNSQuestion,
                     on loop: any EventLoop) -> EventLoopFuture<DNSMessage> {
        let promise = loop.makePromise(of: DNSMessage.self)
        let bindHost = server.protocol == .inet6 ? "::" : "0.0.0.0"
        DatagramBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UDPAnswerHandler(server: server, question: question, promise: promise))
                }
            }
            .bind(host: bindHost, port: 0)
            .whenComplete { result in
                switch result {
                case .failure(let error):
                    promise.fail(error)
                case .success(let channel):
                    let envelope = AddressedEnvelope(remoteAddress: server, data: ByteBuffer(bytes: query))
                    channel.writeAndFlush(envelope).whenFailure { promise.fail($0) }
                    let timer = loop.scheduleTask(in: timeout) { promise.fail(DNSError.timeout) }
                    promise.futureResult.whenComplete { _ in
                        timer.cancel()
                        channel.close(promise: nil)
                    }
                }
            }
        return promise.futureResult
    }

    private func tcp(_ server: SocketAddress, _ query: [UInt8], _ question: DNSQuestion,
                     on loop: any EventLoop) -> EventLoopFuture<DNSMessage> {
        let promise = loop.makePromise(of: DNSMessage.self)
        ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TCPAnswerHandler(question: question, promise: promise))
                }
            }
            .connect(to: server)
            .whenComplete { result in
                switch result {
                case .failure(let error):
                    promise.fail(error)
                case .success(let channel):
                    var framed = ByteBuffer()
                    framed.writeInteger(UInt16(query.count))
                    framed.writeBytes(query)
                    channel.writeAndFlush(framed).whenFailure { promise.fail($0) }
                    let timer = loop.scheduleTask(in: timeout) { promise.fail(DNSError.timeout) }
                    promise.futureResult.whenComplete { _ in
                        timer.cancel()
                        channel.close(promise: nil)
                    }
                }
            }
        return promise.futureResult
    }

    /// NOERROR: the records of the asked type reached through the CNAME
    /// chain (possibly none); NXDOMAIN and empty answers are cached for the
    /// negative TTL.
    private func interpret(_ message: DNSMessage, _ question: DNSQuestion) throws -> DNSAnswer {
        let negativeTTL = message.authority.compactMap { record -> UInt32? in
            guard case .soa(let minimum) = record.data else { return nil }
            return min(record.ttl, minimum)
        }.first ?? DNSCache.defaultNegativeTTL
        switch message.responseCode {
        case 0:
            var names: Set<String> = [question.name]
            for record in message.answers {
                if case .cname(let target) = record.data, names.contains(record.name) { names.insert(target) }
            }
            let matching = message.answers.filter {
                names.contains($0.name) && $0.data.type == question.type.rawValue
            }
            let answer = DNSAnswer(records: matching.map(\.data), ttl: matching.map(\.ttl).min() ?? negativeTTL,
                                   authenticated: message.authenticated)
            cache.store(question.name, question.type, .success(answer), ttl: answer.ttl)
            return answer
        case 3:
            cache.store(question.name, question.type, .failure(.nxdomain), ttl: negativeTTL)
            throw DNSError.nxdomain
        default:
            throw DNSError.servfail
        }
    }
}

/// Takes the first datagram that comes from the server and answers the question.
private final class UDPAnswerHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let server: SocketAddress
    private let question: DNSQuestion
    private let promise: EventLoopPromise<DNSMessage>

    init(server: SocketAddress, question: DNSQuestion, promise: EventLoopPromise<DNSMessage>) {
        self.server = server
        self.question = question
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard envelope.remoteAddress == server,
              let message = try? DNSMessage(parsing: Array(envelope.data.readableBytesView)),
              question.matches(message) else { return }
        promise.succeed(message)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
    }
}

/// What was asked, to match the answer against (id, name, type).
struct DNSQuestion: Sendable {
    var id: UInt16
    var name: String
    var type: DNSRecordType

    func matches(_ message: DNSMessage) -> Bool {
        message.id == id && message.questionName == name && message.questionType == type.rawValue
    }
}

/// Reads one length-prefixed answer (RFC 1035 4.2.2) from a TCP stream.
private final class TCPAnswerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let question: DNSQuestion
    private let promise: EventLoopPromise<DNSMessage>
    private var received = ByteBuffer()

    init(question: DNSQuestion, promise: EventLoopPromise<DNSMessage>) {
        self.question = question
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        received.writeBuffer(&bytes)
        guard let length = received.getInteger(at: received.readerIndex, as: UInt16.self),
              let body = received.getBytes(at: received.readerIndex + 2, length: Int(length)) else { return }
        do {
            let message = try DNSMessage(parsing: body)
            guard question.matches(message) else { throw DNSError.malformed("the answer does not match the question") }
            promise.succeed(message)
        } catch {
            promise.fail(error)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(DNSError.malformed("the server closed the connection"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
    }
}
