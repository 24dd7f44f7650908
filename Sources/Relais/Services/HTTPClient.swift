import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import RelaisTLS

/// A minimal HTTP client for `relais.http.request` in hooks, OAuth2 token
/// endpoints (HTTPS) and `relais queue` talking to a running relay's admin
/// endpoint: the relay's own TLS handler (for https) under SwiftNIO's
/// HTTP/1.1 client codecs (which handle Content-Length and chunked bodies),
/// one request per connection, the body at most `maxBody` bytes.
public enum HTTPClient {
    public struct Response: Sendable {
        public var status: Int
        /// Header fields in the order received.
        public var headers: [(name: String, value: String)] = []
        public var body: [UInt8]
    }

    /// Largest response body read unless the caller says otherwise.
    static let maxBody = 1024 * 1024

    /// POSTs `form` as `application/x-www-form-urlencoded`.
    static func post(_ url: URL, form: [(String, String)], tls: TLSContext, group: any EventLoopGroup,
                     timeout: TimeAmount = .seconds(30)) async throws -> Response {
        let body = form.map { "\(escape($0.0))=\(escape($0.1))" }.joined(separator: "&")
        return try await request(.POST, url, headers: [("Content-Type", "application/x-www-form-urlencoded"),
                                                       ("Accept", "application/json")],
                                 body: body, tls: tls, group: group, timeout: timeout)
    }

    /// One request; `tls` is required for https URLs and unused for http.
    public static func request(_ method: HTTPMethod, _ url: URL, headers extra: [(String, String)] = [], body: String = "",
                               tls: TLSContext? = nil, group: any EventLoopGroup,
                               timeout: TimeAmount = .seconds(30)) async throws -> Response {
        try await request(method, url, headers: extra, body: Array(body.utf8), tls: tls, group: group,
                          timeout: timeout, maxBody: maxBody)
    }

    /// One request with a byte body, answered with at most `maxBody` bytes;
    /// `timeout` bounds the connection and, from there, the whole exchange.
    /// `connectAddress` connects there instead of resolving the URL's host
    /// (which still names the server for TLS).
    public static func request(_ method: HTTPMethod, _ url: URL, headers extra: [(String, String)], body: [UInt8],
                               tls: TLSContext?, group: any EventLoopGroup, timeout: TimeAmount,
                               maxBody: Int, connectAddress: String? = nil) async throws -> Response {
        guard let host = url.host, url.scheme == "https" || url.scheme == "http" else {
            throw HTTPClientError("\(url) is not an http or https URL")
        }
        let secure = url.scheme == "https" ? tls : nil
        if url.scheme == "https" && secure == nil { throw HTTPClientError("\(url) needs TLS") }
        let port = url.port ?? (url.scheme == "https" ? 443 : 80)
        let path = (url.path.isEmpty ? "/" : url.path) + (url.query.map { "?" + $0 } ?? "")
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: host)
        for (name, value) in extra { headers.add(name: name, value: value) }
        if !headers.contains(name: "Content-Length") { headers.add(name: "Content-Length", value: "\(body.count)") }
        headers.add(name: "Connection", value: "close")
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        // The promise exists before the connection: a TLS failure right
        // after connecting (a refused certificate) must fail it, not be lost.
        let loop = group.next()
        let done = loop.makePromise(of: Response.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let secure {
                            try channel.pipeline.syncOperations.addHandler(TLSHandler(context: secure, serverName: host))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(ResponseCollector(maxBody: maxBody, done: done))
                    }
                }
                .connect(host: connectAddress ?? host, port: port)
                .get()
        } catch {
            done.fail(error)
            throw error
        }
        try await channel.eventLoop.submit {
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            channel.eventLoop.scheduleTask(in: timeout) {
                done.fail(HTTPClientError("timeout"))
                channel.close(promise: nil)
            }
        }.get()
        return try await done.futureResult.get()
    }

    private static func escape(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

/// Why an HTTP request failed.
struct HTTPClientError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Gathers the response the codecs decoded: its status and body.
private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    private var done: EventLoopPromise<HTTPClient.Response>?
    private let maxBody: Int
    private var response = HTTPClient.Response(status: 0, body: [])

    init(maxBody: Int, done: EventLoopPromise<HTTPClient.Response>) {
        self.maxBody = maxBody
        self.done = done
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            response.status = Int(head.status.code)
            response.headers = head.headers.map { ($0.name, $0.value) }
        case .body(let part):
            guard response.body.count + part.readableBytes <= maxBody else {
                return fail(HTTPClientError("response body larger than \(maxBody) bytes"), context)
            }
            response.body += part.readableBytesView
        case .end:
            done?.succeed(response)
            done = nil
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(HTTPClientError("connection closed before the response ended"), context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error, context)
    }

    private func fail(_ error: any Error, _ context: ChannelHandlerContext) {
        done?.fail(error)
        done = nil
        context.close(promise: nil)
    }
}
