import Foundation

/// What `GET /api/cluster` and `relais cluster status` show: the live
/// nodes, and each shared upstream's usage across the cluster.
public struct ClusterStatus: Codable, Sendable {
    struct Node: Codable, Sendable {
        var name: String
        /// Seconds since its last heartbeat.
        var lastSeen: Double
        var started: Double?
    }

    struct Upstream: Codable, Sendable {
        var name: String
        var rate: Double?
        /// Seconds of reserved send slots ahead (the rate's backlog).
        var rateBacklog: Double?
        var maxConnections: Int
        /// Connection leases held now, by node.
        var connections: [String: Int]
        /// `per_minute 12/20`, ... counted across the cluster.
        var quota: String?
    }

    var node: String
    /// `shared`, or `fallback` (Redis unreachable: each node keeps its share).
    var mode: String
    var knownNodes: Int
    var redis: String
    var nodes: [Node]
    var upstreams: [Upstream]
    /// Why Redis could not be read, when it could not.
    var error: String?
}

extension ClusterStatus {
    /// The status as `relais cluster status` prints it, from the JSON of
    /// `GET /api/cluster`; nil when the JSON is not a status.
    public static func text(json: String) -> String? {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase  // as the admin endpoint writes it
        guard let status = try? decoder.decode(ClusterStatus.self, from: Data(json.utf8)) else { return nil }
        var lines = ["node \(status.node) (\(status.mode), \(status.knownNodes) live node(s) known), redis \(status.redis)"]
        if let error = status.error { lines.append("redis error: \(error)") }
        lines.append("nodes")
        for node in status.nodes {
            lines.append("  \(node.name)  last heartbeat \(String(format: "%.1f", node.lastSeen)) s ago")
        }
        lines.append("shared upstreams")
        if status.upstreams.isEmpty { lines.append("  (none declared with shared = true)") }
        for upstream in status.upstreams {
            var parts = [upstream.name]
            if let rate = upstream.rate {
                parts.append("rate \(rate)/s" + (upstream.rateBacklog.map { String(format: " (%.1f s of slots reserved)", $0) } ?? ""))
            }
            let held = upstream.connections.values.reduce(0, +)
            let byNode = upstream.connections.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            parts.append("connections \(held)/\(upstream.maxConnections)" + (byNode.isEmpty ? "" : " (\(byNode))"))
            if let quota = upstream.quota { parts.append("quota \(quota)") }
            lines.append("  " + parts.joined(separator: "  "))
        }
        return lines.joined(separator: "\n")
    }
}
