import Foundation
import NIOHTTP1
import NIOPosix

/// What the admin endpoint answers: `/healthz`, `/readyz`, `/metrics` and
/// the JSON API over the queue and the upstreams. A bearer token, when
/// set, is required everywhere but `/healthz`, compared in constant time.
struct AdminRoutes: Sendable {
    let token: String?
    let metrics: RelayMetrics
    let queue: DeliveryQueue
    let spool: SpoolFolder
    let threadPool: NIOThreadPool
    /// The cluster's shared limits, when this node is in one.
    var cluster: SharedLimits?
    /// The `shared = true` smarthosts the running policy declares.
    var sharedUpstreams: @Sendable () -> [Smarthost] = { [] }
    /// Listening, spool writable, policy loaded: nil when ready, else why not.
    let notReady: @Sendable () -> String?

    func respond(to request: AdminRequest) async -> AdminResponse {
        let (method, path) = (request.method, request.path)
        if method == .GET && path == ["healthz"] { return AdminResponse(status: .ok, text: "ok\n") }
        // The page holds no data and no secret: its script asks the API, with the token from the address's #fragment.
        if method == .GET && path.isEmpty { return AdminResponse(status: .ok, contentType: "text/html; charset=utf-8", text: StatusPage.html) }
        guard authorized(request.authorization) else {
            var response = AdminResponse(status: .unauthorized, text: "a bearer token is required\n")
            response.headers = [("WWW-Authenticate", "Bearer")]
            return response
        }
        let last = path.count > 2 ? path[2] : ""
        do {
            switch (method, path.prefix(2)) {
            case (.GET, ["readyz"]):
                let reason = notReady()
                return AdminResponse(status: reason == nil ? .ok : .serviceUnavailable, text: (reason ?? "ready") + "\n")
            case (.GET, ["metrics"]):
                await recordScrapeValues()
                return AdminResponse(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", text: metrics.render())
            case (.GET, ["api", "queue"]) where path.count == 2:
                return try json(await queuePage(request.query))
            case (.GET, ["api", "queue"]) where path.count == 3:
                guard let message = try await message(last) else { return notFound(last) }
                return try json(message)
            case (.POST, ["api", "queue"]) where path == ["api", "queue", "flush"]:
                let flushed = await queue.relay.flush(upstream: request.query["upstream"])
                return try json(["flushed": flushed])
            case (.POST, ["api", "queue"]) where path.count == 4 && path[3] == "bounce":
                guard await queue.relay.bounce(last) else { return notFound(last) }
                return try json(["bounced": last])
            case (.DELETE, ["api", "queue"]) where path.count == 3:
                guard await queue.relay.delete(last) else { return notFound(last) }
                return try json(["deleted": last])
            case (.GET, ["api", "activity"]) where path.count == 2:
                return try json(metrics.activity.snapshot())
            case (.GET, ["api", "upstreams"]) where path.count == 2:
                return try json(await upstreams())
            case (.GET, ["api", "cluster"]) where path.count == 2:
                guard let cluster else { return AdminResponse(status: .notFound, text: "this node is in no cluster (relais.config{ cluster = ... })\n") }
                return try json(await cluster.status(of: sharedUpstreams()))
            case (.POST, ["api", "upstreams"]) where path.count == 4 && ["pause", "resume"].contains(path[3]):
                let pause = path[3] == "pause"
                await queue.ledger.hold(last, pause, at: Date().timeIntervalSince1970)
                if !pause { _ = await queue.relay.flush() }
                return try json(["upstream": last, "state": pause ? "paused" : "resumed"])
            default:
                return AdminResponse(status: .notFound, text: "no such endpoint\n")
            }
        } catch {
            return AdminResponse(status: .internalServerError, text: "\(error)\n")
        }
    }

    /// Constant-time comparison of the bearer token.
    private func authorized(_ header: String?) -> Bool {
        guard let token else { return true }
        let given = Array((header ?? "").utf8)
        let expected = Array("Bearer \(token)".utf8)
        var difference = UInt8(given.count == expected.count ? 0 : 1)
        for index in expected.indices { difference |= expected[index] ^ (index < given.count ? given[index] : 0) }
        return difference == 0
    }

    private func notFound(_ id: String) -> AdminResponse {
        AdminResponse(status: .notFound, text: "no queued message \(id)\n")
    }

    private func json<Value: Encodable>(_ value: Value) throws -> AdminResponse {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return AdminResponse(status: .ok, contentType: "application/json", text: String(decoding: try encoder.encode(value), as: UTF8.self) + "\n")
    }

    // MARK: - Queue

    /// A queued message as the API shows it.
    struct QueuedMessage: Encodable, Sendable {
        struct Recipient: Encodable, Sendable {
            var address: String
            var status: String
            var attempts: Int
            var nextAttempt: Double?
            var lastResult: String?
            var lastTarget: String?
            var upstreams: [String]
        }
        var id: String
        var sender: String
        var receivedAt: Double
        var size: Int
        var recipients: [Recipient]
    }

    struct QueuePage: Encodable, Sendable {
        var total: Int
        var offset: Int
        var messages: [QueuedMessage]
    }

    private func queuePage(_ query: [String: String]) async throws -> QueuePage {
        let offset = max(0, Int(query["offset"] ?? "") ?? 0)
        let limit = min(max(1, Int(query["limit"] ?? "") ?? 100), 1000)
        let (upstream, state, spool) = (query["upstream"], query["state"], self.spool)
        let page = try await threadPool.runIfActive {
            let ids = try spool.queuedIDs()
            guard upstream != nil || state != nil else {
                // Unfiltered: only the page's messages are read.
                let shown = ids.dropFirst(offset).prefix(limit).compactMap { Self.describe($0, in: spool) }
                return QueuePage(total: ids.count, offset: offset, messages: shown)
            }
            var matching: [QueuedMessage] = []
            var total = 0
            for id in ids {
                guard let message = Self.describe(id, in: spool) else { continue }
                let recipients = message.recipients.filter {
                    (upstream == nil || $0.upstreams.contains(upstream ?? "")) && (state == nil || $0.status == state)
                }
                guard !recipients.isEmpty else { continue }
                total += 1
                if total > offset && matching.count < limit { matching.append(message) }
            }
            return QueuePage(total: total, offset: offset, messages: matching)
        }
        if upstream == nil && state == nil { metrics.activity.queueDepth(page.total) }
        return page
    }

    private func message(_ id: String) async throws -> QueuedMessage? {
        guard QueueID.isValid(id) else { return nil }
        let spool = self.spool
        return try await threadPool.runIfActive { Self.describe(id, in: spool) }
    }

    private static func describe(_ id: String, in spool: SpoolFolder) -> QueuedMessage? {
        guard let (envelope, size, state, _) = try? spool.loadEnvelope(id) else { return nil }
        let recipients = envelope.recipients.enumerated().map { index, address in
            let saved = state?.recipients.first { $0.address == address }
            let upstreams = (envelope.route(index) ?? []).smarthostNames
            return QueuedMessage.Recipient(address: address, status: saved?.status.rawValue ?? "pending",
                                           attempts: saved?.attempts ?? 0, nextAttempt: saved?.nextAttempt,
                                           lastResult: saved?.lastResult, lastTarget: saved?.lastTarget, upstreams: upstreams)
        }
        return QueuedMessage(id: id, sender: envelope.sender, receivedAt: envelope.receivedAt, size: size,
                             recipients: recipients)
    }

    // MARK: - Upstreams

    struct UpstreamState: Encodable, Sendable {
        var name: String
        var state: String
        var quota: String?
        var lastFailure: String?
    }

    private func upstreams() async -> [UpstreamState] {
        let now = Date().timeIntervalSince1970
        return await queue.ledger.snapshot(at: now).sorted { $0.key < $1.key }.map { name, record in
            UpstreamState(name: name, state: record.state, quota: record.quota.map { record.usage.summary(at: now, $0) },
                          lastFailure: record.health.lastFailure)
        }
    }

    /// Queue depth, oldest message age, the content the relay queue holds
    /// in memory and each upstream's state, read when scraped.
    private func recordScrapeValues() async {
        let spool = self.spool
        let (depth, oldest) = (try? await threadPool.runIfActive { () -> (Int, Double) in
            let ids = try spool.queuedIDs()
            let oldest = ids.first.flatMap { try? spool.loadEnvelope($0).envelope.receivedAt } ?? Date().timeIntervalSince1970
            return (ids.count, Date().timeIntervalSince1970 - oldest)
        }) ?? (0, 0)
        metrics.set("relais_queue_messages", to: Double(depth))
        metrics.activity.queueDepth(depth)
        metrics.set("relais_queue_oldest_message_age_seconds", to: oldest)
        metrics.set("relais_queue_content_bytes", to: Double(await queue.relay.contentInMemory))
        let now = Date().timeIntervalSince1970
        for (name, record) in await queue.ledger.snapshot(at: now) {
            let state = record.held == true ? "paused" : record.health.stateClass(at: now)
            for candidate in ["up", "down", "paused"] {
                metrics.set("relais_upstream_state", [("upstream", name), ("state", candidate)], to: candidate == state ? 1 : 0)
            }
            for window in record.quota?.windows ?? [] {
                metrics.set("relais_upstream_quota_used", [("upstream", name), ("window", window.name)],
                            to: Double(record.usage.used(window.name, seconds: window.seconds, at: now)))
            }
        }
    }
}
