import Foundation
import Logging
import NIOCore
import NIOPosix

/// The running relay's local admin channel: a Unix socket at
/// `<spool>/admin.sock` (mode 0600) taking one command per connection,
/// `flush` or `delete <ID>`, and answering one line: `ok ...` or
/// `error ...`. `relais queue flush|delete` use it when a relay runs.
public enum AdminChannel {
    public static func socketPath(spool: String) -> String { spool + "/admin.sock" }

    static func bind(spool: String, queue: DeliveryQueue, group: any EventLoopGroup, logger: Logger) throws -> any Channel {
        let path = socketPath(spool: spool)
        unlink(path)
        let channel = try ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(queue: queue, logger: logger))
                }
            }
            .bind(unixDomainSocketPath: path)
            .wait()
        chmod(path, 0o600)
        return channel
    }

    /// Runs one command (blocking); nil when no relay is listening.
    public static func send(_ command: String, spool: String) -> String? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(socketPath(spool: spool).utf8)
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { return nil }
        let line = Array((command + "\n").utf8)
        guard line.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == line.count else { return nil }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            reply += chunk[0..<count]
        }
        return String(decoding: reply, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Serves one admin command per connection.
final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let queue: DeliveryQueue
    private let logger: Logger
    private var input = ByteBuffer()

    init(queue: DeliveryQueue, logger: Logger) {
        self.queue = queue
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        input.writeBuffer(&bytes)
        guard let newline = input.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if input.readableBytes > 1024 { context.close(promise: nil) }
            return
        }
        let line = input.readString(length: newline - input.readerIndex) ?? ""
        let words = line.split(separator: " ").map(String.init)
        let relay = queue.relay
        let logger = self.logger
        let promise = context.eventLoop.makePromise(of: String.self)
        promise.completeWithTask {
            switch words.first {
            case "flush":
                let count = await relay.flush()
                logger.info("queue flushed by the admin channel", metadata: ["messages": "\(count)"])
                return "ok \(count) message(s) due now"
            case "delete" where words.count == 2:
                return await relay.delete(words[1]) ? "ok deleted \(words[1])" : "error \(words[1]) is not in the relay queue"
            default:
                return "error unknown command; use flush or delete ID"
            }
        }
        promise.futureResult.assumeIsolated().whenComplete { result in
            let text = (try? result.get()) ?? "error"
            context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: text + "\n"))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }
}
