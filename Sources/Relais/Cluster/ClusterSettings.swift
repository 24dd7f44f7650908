import NIOCore

/// `relais.config{ cluster = { redis, node, password, db, lease } }`: the
/// Redis server the nodes of a cluster share their limits through, and
/// this node's name. A plain value; read once at start (a change needs a
/// restart, as the spool does).
public struct ClusterSettings: Sendable, Hashable {
    var redis: RedisEndpoint
    /// This node's name (default: the hostname), unique in the cluster.
    var node: String
    /// Seconds a connection lease lives without renewal: how soon a killed
    /// node's connections come back.
    var leaseSeconds: Double = 30
    /// Seconds between heartbeats; a node is live while its last heartbeat
    /// is younger than three of them.
    var heartbeatSeconds: Double = 2

    var nodeTTL: Double { heartbeatSeconds * 3 }
}
