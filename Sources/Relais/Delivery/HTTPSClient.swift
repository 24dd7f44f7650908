import Foundation
import NIOCore
import NIOPosix
import RelaisTLS

/// A minimal HTTPS client for OAuth2 token endpoints, on SwiftNIO and the
/// relay's own TLS handler: one POST per connection (`Connection: close`),
/// the response read to the end; Content-Length and chunked bodies.
enum HTTPSClient {
    struct Response {
        var status: Int
        var body: [UInt8]
    }

    static func post(_ url: URL, form: [(String, String)], tls: TLSContext, group: any EventLoopGroup,
                     timeout: TimeAmount = .seconds(30)) async throws -> Response {
        guard url.scheme == "https", let host = url.host else { throw HTTPSError("\(url) is not an https URL") }
        let port = url.port ?? 443
        let body = form.map { "\(escape($0.0))=\(escape($0.1))" }.joined(separator: "&")
        let path = url.path.isEmpty ? "/" : url.path + (url.query.map { "?" + $0 } ?? "")
        let request = "POST \(path) HTTP/1.1\r\nHost: \(host)\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            + "Accept: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TLSHandler(context: tls, serverName: host))
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector())
                }
            }
            .connect(host: host, port: port)
            .get()
        let done = channel.eventLoop.makePromise(of: [UInt8].self)
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: ResponseCollector.self).done = done
            channel.writeAndFlush(ByteBuffer(string: request), promise: nil)
            channel.eventLoop.scheduleTask(in: timeout) {
                done.fail(HTTPSError("timeout waiting for \(host)"))
                channel.close(promise: nil)
            }
        }.get()
        return try parse(try await done.futureResult.get())
    }

    private static func escape(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    static func parse(_ bytes: [UInt8]) throws -> Response {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = bytes.indices.first(where: { bytes[$0...].starts(with: separator) }) else {
            throw HTTPSError("malformed HTTP response")
        }
        let head = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusWords = head.first?.split(separator: " ") ?? []
        guard statusWords.count >= 2, let status = Int(statusWords[1]) else { throw HTTPSError("malformed HTTP status line") }
        var body = Array(bytes[(end + 4)...])
        let chunked = head.contains { $0.lowercased().hasPrefix("transfer-encoding:") && $0.lowercased().contains("chunked") }
        if chunked { body = try dechunk(body) }
        return Response(status: status, body: body)
    }

    private static func dechunk(_ bytes: [UInt8]) throws -> [UInt8] {
        var result: [UInt8] = []
        var index = 0
        while index < bytes.count {
            guard let lineEnd = bytes[index...].firstIndex(of: 10) else { break }
            let sizeText = String(decoding: bytes[index..<lineEnd], as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first ?? ""
            guard let size = Int(sizeText, radix: 16) else { throw HTTPSError("malformed chunked body") }
            if size == 0 { break }
            let start = lineEnd + 1
            guard start + size <= bytes.count else { throw HTTPSError("truncated chunked body") }
            result += bytes[start..<(start + size)]
            index = start + size + 2
        }
        return result
    }
}

/// Why an HTTPS request failed.
struct HTTPSError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Gathers the whole response until the server closes.
private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var done: EventLoopPromise<[UInt8]>?
    private var bytes: [UInt8] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytes += unwrapInboundIn(data).readableBytesView
    }

    func channelInactive(context: ChannelHandlerContext) {
        done?.succeed(bytes)
        done = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done?.fail(error)
        done = nil
        context.close(promise: nil)
    }
}
