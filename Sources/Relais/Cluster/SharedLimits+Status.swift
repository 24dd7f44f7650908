import Foundation

extension SharedLimits {
    /// The live nodes and the cluster-wide usage of `upstreams` (the shared
    /// smarthosts this node knows), read from Redis.
    func status(of upstreams: [Smarthost]) async -> ClusterStatus {
        var status = ClusterStatus(node: settings.node, mode: mode == .shared ? "shared" : "fallback", knownNodes: nodes,
                                   redis: settings.redis.addressText, nodes: [], upstreams: [])
        do {
            let now = try await serverTime()
            let info = try await pairs(redis.call(["HGETALL", Self.key("node-info")]))
            let beats = try await pairs(redis.call(["ZRANGE", Self.key("nodes"), "0", "-1", "WITHSCORES"]))
            let descriptions = Dictionary(info, uniquingKeysWith: { first, _ in first })
            status.nodes = beats.map { name, score in
                ClusterStatus.Node(name: name, lastSeen: max(0, now - (Double(score) ?? now)),
                                   started: descriptions[name].flatMap(Self.startedTime))
            }.sorted { $0.name < $1.name }
            for smarthost in upstreams {
                status.upstreams.append(try await usage(of: smarthost, now: now))
            }
        } catch {
            status.error = NetworkFailure.describe(error)
        }
        return status
    }

    private func usage(of smarthost: Smarthost, now: Double) async throws -> ClusterStatus.Upstream {
        let name = smarthost.name
        var upstream = ClusterStatus.Upstream(name: name, rate: smarthost.rate, maxConnections: smarthost.maxConnections,
                                              connections: [:])
        if case .bulk(let bytes) = try await redis.call(["GET", Self.key("rate", name)]),
           let next = Double(String(decoding: bytes, as: UTF8.self)) {
            upstream.rateBacklog = max(0, next - now)
        }
        for (lease, expiry) in try await pairs(redis.call(["ZRANGE", Self.key("leases", name), "0", "-1", "WITHSCORES"]))
        where (Double(expiry) ?? 0) > now {
            let node = lease.split(separator: ":").dropLast(2).joined(separator: ":")
            upstream.connections[node, default: 0] += 1
        }
        if let quota = smarthost.quota {
            let windows = quota.windows
            let reply = try await redis.eval(ClusterScripts.quotaUsage, keys: [Self.key("quota", name) + ":"],
                                             windows.map { "\(Int($0.seconds))" })
            if case .array(let counts) = reply {
                upstream.quota = zip(windows, counts).map { window, count in
                    "\(window.name) \(count == .integer(0) ? 0 : Int(Self.text(count)) ?? 0)/\(window.limit)"
                }.joined(separator: ", ")
            }
        }
        return upstream
    }

    /// `started` of a node's description (`{"started":...,"pid":...}`).
    private static func startedTime(_ description: String) -> Double? {
        struct Description: Decodable { var started: Double }
        return (try? JSONDecoder().decode(Description.self, from: Data(description.utf8)))?.started
    }

    private func serverTime() async throws -> Double {
        guard case .array(let parts) = try await redis.call(["TIME"]), parts.count == 2 else { return Date().timeIntervalSince1970 }
        return (Double(Self.text(parts[0])) ?? 0) + (Double(Self.text(parts[1])) ?? 0) / 1e6
    }

    /// A flat reply of names and values as pairs.
    private func pairs(_ reply: RESPValue) -> [(String, String)] {
        guard case .array(let items) = reply else { return [] }
        return stride(from: 0, to: items.count - 1, by: 2).map { (Self.text(items[$0]), Self.text(items[$0 + 1])) }
    }

    private static func text(_ value: RESPValue) -> String {
        switch value {
        case .bulk(let bytes): String(decoding: bytes, as: UTF8.self)
        case .simple(let text), .error(let text): text
        case .integer(let number): "\(number)"
        case .null, .array: ""
        }
    }
}
