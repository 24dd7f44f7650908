import Foundation
import Logging
import NIOCore
import ServiceLifecycle

/// The rate, quota and connection limits of `shared = true` smarthosts,
/// counted across the nodes of a cluster in Redis (as KumoMTA keeps its
/// throttles): a rate is one schedule of slots, a quota one counter per
/// window, `max_connections` a set of leases that expire unless renewed, so
/// a killed node's connections come back. Each node also beats a heartbeat,
/// which gives the number of live nodes.
///
/// When Redis cannot be reached, a node falls back to its own share of each
/// limit, the limit divided by the last known number of live nodes (logged
/// once; the count is kept beside the spool, so a restart during the outage
/// still divides), keeps delivering, and shares again once a heartbeat gets
/// through. In the meantime the cluster as a whole stays within the limit
/// as long as the node count holds.
actor SharedLimits: Service {
    /// How a limit is to be kept now.
    enum Mode: Equatable, Sendable {
        case shared
        /// Redis is unreachable: keep `limit / nodes` locally.
        case fallback(nodes: Int)

        /// How many nodes a limit kept locally is split between; nil while Redis counts it.
        var localShare: Int? {
            if case .fallback(let nodes) = self { return nodes }
            return nil
        }
    }

    enum QuotaAnswer: Sendable {
        case reserved(at: Double)
        case refused(String, opensAt: Double)
        case fallback(nodes: Int)
    }

    enum LeaseAnswer: Sendable {
        case granted(String)
        /// Every shared connection is in use; try again shortly.
        case busy
        case fallback(nodes: Int)
    }

    let settings: ClusterSettings
    let redis: SharedRedis
    private let logger: Logger
    /// `relais_cluster_nodes` and `relais_cluster_shared` (1 shared, 0 fallback).
    private let metrics: RelayMetrics?
    private let nodeFile: String
    private var reachable = true
    private(set) var nodes: Int
    /// Leases this node holds, by upstream.
    private var leases: [String: Set<String>] = [:]
    private var leaseSerial = 0
    private let startedAt = Date().timeIntervalSince1970

    /// `stateFolder` keeps the last known node count (`cluster-nodes`).
    init(settings: ClusterSettings, loop: any EventLoop, stateFolder: String, metrics: RelayMetrics?, logger: Logger) {
        self.settings = settings
        self.metrics = metrics
        self.redis = SharedRedis(endpoint: settings.redis, loop: loop)
        self.logger = logger
        nodeFile = stateFolder + "/cluster-nodes"
        nodes = (try? String(contentsOfFile: nodeFile, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 1
    }

    var mode: Mode { reachable ? .shared : .fallback(nodes: nodes) }

    static func key(_ parts: String...) -> String { "relais:" + parts.joined(separator: ":") }

    // MARK: - Limits

    /// Seconds to wait for the next of `upstream`'s send slots, `interval` apart
    /// across the cluster; nil when Redis is unreachable (then keep `rate / nodes`).
    func rateWait(_ upstream: String, interval: Double) async -> Double? {
        guard reachable else { return nil }
        do {
            let reply = try await redis.eval(ClusterScripts.rateSlot, keys: [Self.key("rate", upstream)],
                                             [String(format: "%.6f", interval)])
            guard case .bulk(let bytes) = reply, let wait = Double(String(decoding: bytes, as: UTF8.self)) else { return 0 }
            return wait
        } catch {
            unreachable(error)
            return nil
        }
    }

    /// Counts one message against `quota` in every window, cluster-wide.
    func reserveQuota(_ upstream: String, _ quota: UpstreamQuota) async -> QuotaAnswer {
        guard reachable else { return .fallback(nodes: nodes) }
        let windows = quota.windows
        do {
            let reply = try await redis.eval(ClusterScripts.quotaReserve, keys: [Self.key("quota", upstream) + ":"],
                                             windows.flatMap { ["\($0.limit)", "\(Int($0.seconds))"] })
            guard case .array(let items) = reply, items.count == 2, case .integer(let index) = items[0],
                  case .integer(let time) = items[1] else { return .reserved(at: Date().timeIntervalSince1970) }
            guard index > 0, Int(index) <= windows.count else { return .reserved(at: Double(time)) }
            let window = windows[Int(index) - 1]
            return .refused("shared quota \(window.name) = \(window.limit) used up across the cluster", opensAt: Double(time))
        } catch {
            unreachable(error)
            return .fallback(nodes: nodes)
        }
    }

    /// Gives back a reservation that sent nothing.
    func releaseQuota(_ upstream: String, _ quota: UpstreamQuota, reservedAt: Double) async {
        guard reachable else { return }
        do {
            _ = try await redis.eval(ClusterScripts.quotaRelease, keys: [Self.key("quota", upstream) + ":"],
                                     ["\(Int(reservedAt))"] + quota.windows.map { "\(Int($0.seconds))" })
        } catch {
            unreachable(error)
        }
    }

    /// A lease for one connection to `upstream`, if fewer than `limit` are
    /// held across the cluster.
    func acquireLease(_ upstream: String, limit: Int) async -> LeaseAnswer {
        guard reachable else { return .fallback(nodes: nodes) }
        leaseSerial += 1
        let lease = "\(settings.node):\(startedAt):\(leaseSerial)"
        do {
            let reply = try await redis.eval(ClusterScripts.leaseAcquire, keys: [Self.key("leases", upstream)],
                                             ["\(limit)", "\(settings.leaseSeconds)", lease])
            guard reply == .integer(1) else { return .busy }
            leases[upstream, default: []].insert(lease)
            return .granted(lease)
        } catch {
            unreachable(error)
            return .fallback(nodes: nodes)
        }
    }

    func releaseLease(_ upstream: String, _ lease: String) async {
        leases[upstream]?.remove(lease)
        guard reachable else { return }
        do {
            _ = try await redis.call(["ZREM", Self.key("leases", upstream), lease])
        } catch {
            unreachable(error)
        }
    }

    // MARK: - Heartbeat

    /// Beats the heartbeat and renews the leases until the relay stops, then
    /// gives this node's leases back and leaves the node set.
    func run() async {
        logger.info("cluster member", metadata: ["node": "\(settings.node)", "redis": "\(settings.redis.addressText)"])
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await beat()
            let pause = UInt64(settings.heartbeatSeconds * 1e9)
            try? await cancelWhenGracefulShutdown { try await Task.sleep(nanoseconds: pause) }
        }
        await leave()
    }

    private func beat() async {
        let description = "{\"started\":\(Int(startedAt)),\"pid\":\(getpid())}"
        do {
            let reply = try await redis.eval(ClusterScripts.heartbeat, keys: [Self.key("nodes"), Self.key("node-info")],
                                             [settings.node, "\(Int(settings.nodeTTL.rounded(.up)))", description])
            if case .integer(let count) = reply { remember(nodes: max(1, Int(count))) }
            for (upstream, held) in leases where !held.isEmpty {
                _ = try await redis.eval(ClusterScripts.leaseRenew, keys: [Self.key("leases", upstream)],
                                         ["\(settings.leaseSeconds)"] + held.sorted())
            }
            if !reachable {
                reachable = true
                logger.notice("cluster Redis reachable again; limits are shared", metadata: ["nodes": "\(nodes)"])
            }
            metrics?.set("relais_cluster_shared", to: 1)
            metrics?.set("relais_cluster_nodes", to: Double(nodes))
        } catch {
            unreachable(error)
        }
    }

    private func leave() async {
        guard reachable else { return }
        for (upstream, held) in leases where !held.isEmpty {
            _ = try? await redis.call(["ZREM", Self.key("leases", upstream)] + held.sorted())
        }
        _ = try? await redis.call(["ZREM", Self.key("nodes"), settings.node])
        _ = try? await redis.call(["HDEL", Self.key("node-info"), settings.node])
    }

    private func remember(nodes count: Int) {
        guard count != nodes else { return }
        nodes = count
        try? DurableFiles.replaceUnsynced(nodeFile, with: Data("\(count)\n".utf8))
    }

    private func unreachable(_ error: any Error) {
        metrics?.set("relais_cluster_shared", to: 0)
        guard reachable else { return }
        reachable = false
        logger.warning("cluster Redis unreachable; each shared limit falls back to this node's share", metadata: [
            "nodes": "\(nodes)", "error": "\(NetworkFailure.describe(error))",
        ])
    }
}
