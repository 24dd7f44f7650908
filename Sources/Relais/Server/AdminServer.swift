import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The admin HTTP endpoint's listener: SwiftNIO's HTTP/1.1 codecs in front
/// of `AdminHTTPHandler`, which hands each request to `AdminRoutes`.
enum AdminServer {
    /// Largest request body accepted.
    static let maxBody = 64 * 1024

    static func bind(_ address: SocketAddress, routes: AdminRoutes, group: any EventLoopGroup) -> EventLoopFuture<any Channel> {
        ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AdminHTTPHandler(routes: routes))
                }
            }
            .bind(to: address)
    }
}

/// One admin connection: gathers a request (head and body), answers it
/// through the routes off the event loop, writes the response back on it.
final class AdminHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let routes: AdminRoutes
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var tooLarge = false

    init(routes: AdminRoutes) { self.routes = routes }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
            tooLarge = false
        case .body(var part):
            if body.readableBytes + part.readableBytes > AdminServer.maxBody { tooLarge = true } else { body.writeBuffer(&part) }
        case .end:
            guard let head else { return }
            self.head = nil
            let request = AdminRequest(head: head, body: body)
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            let routes = self.routes
            if tooLarge {
                return write(AdminResponse(status: .payloadTooLarge, text: "request body too large\n"), keepAlive: false, context)
            }
            Task {
                let response = await routes.respond(to: request)
                loop.execute {
                    let (handler, context) = bound.value
                    handler.write(response, keepAlive: head.isKeepAlive, context)
                }
            }
        }
    }

    private func write(_ response: AdminResponse, keepAlive: Bool, _ context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: "\(response.body.readableBytes)")
        headers.add(name: "Cache-Control", value: "no-store")
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))),
                      promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }
}

/// A request as the routes see it.
struct AdminRequest: Sendable {
    var method: HTTPMethod
    /// The path without the query, split at `/` (empty parts dropped).
    var path: [String]
    var query: [String: String]
    var authorization: String?
    var body: ByteBuffer

    init(head: HTTPRequestHead, body: ByteBuffer) {
        method = head.method
        let parts = head.uri.split(separator: "?", maxSplits: 1)
        path = (parts.first ?? "").split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        query = [:]
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") {
                let field = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
                query[field[0]] = field.count > 1 ? field[1] : ""
            }
        }
        authorization = head.headers["Authorization"].first
        self.body = body
    }
}

/// A response: status, content type and body.
struct AdminResponse: Sendable {
    var status: HTTPResponseStatus
    var contentType = "text/plain; charset=utf-8"
    var headers: [(String, String)] = []
    var body: ByteBuffer

    init(status: HTTPResponseStatus, contentType: String = "text/plain; charset=utf-8", text: String) {
        self.status = status
        self.contentType = contentType
        self.body = ByteBuffer(string: text)
    }
}
