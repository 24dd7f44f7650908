import Foundation
import NIOConcurrencyHelpers

/// The last hour of the relay's activity for the status page: per-minute
/// counts of accepted messages and of delivery results, per-upstream
/// totals with mean latency, and the latest failures with the upstream's
/// reply. Bounded: 60 minutes, 20 failures, one entry per upstream name.
final class ActivityHistory: Sendable {
    struct Minute: ResultCounts, Encodable, Sendable, Equatable {
        var start: Double
        var accepted = 0
        var delivered = 0
        var deferred = 0
        var failed = 0
        /// The queue depth last seen in this minute (when the API or a scrape counted it).
        var queued: Int?
    }

    struct UpstreamTotals: ResultCounts, Encodable, Sendable {
        var name: String
        var delivered = 0
        var deferred = 0
        var failed = 0
        var latencySeconds = 0.0
        var meanLatencySeconds: Double { delivered + deferred + failed == 0 ? 0 : latencySeconds / Double(delivered + deferred + failed) }

        enum CodingKeys: String, CodingKey { case name, delivered, deferred, failed, meanLatencySeconds }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(delivered, forKey: .delivered)
            try container.encode(deferred, forKey: .deferred)
            try container.encode(failed, forKey: .failed)
            try container.encode(meanLatencySeconds, forKey: .meanLatencySeconds)
        }
    }

    struct Failure: Encodable, Sendable {
        var time: Double
        var upstream: String
        var result: String
        var reply: String
    }

    /// What `GET /api/activity` returns.
    struct Snapshot: Encodable, Sendable {
        var minutes: [Minute]
        var upstreams: [UpstreamTotals]
        var failures: [Failure]
    }

    private struct State {
        var minutes: [Minute] = []
        var upstreams: [String: UpstreamTotals] = [:]
        var failures: [Failure] = []
    }

    private let state = NIOLockedValueBox(State())
    private static let keptMinutes = 60
    private static let keptFailures = 20

    func accepted(at now: Double = Date().timeIntervalSince1970) {
        update(now) { $0.accepted += 1 }
    }

    /// The queue depth counted at `now`.
    func queueDepth(_ count: Int, at now: Double = Date().timeIntervalSince1970) {
        update(now) { $0.queued = count }
    }

    func attempt(upstream: String, result: String, seconds: Double, reply: String,
                 at now: Double = Date().timeIntervalSince1970) {
        update(now) { $0.count(result) }
        state.withLockedValue { state in
            var totals = state.upstreams[upstream] ?? UpstreamTotals(name: upstream)
            totals.count(result)
            totals.latencySeconds += seconds
            state.upstreams[upstream] = totals
            guard result != "delivered" else { return }
            state.failures.append(Failure(time: now, upstream: upstream, result: result, reply: reply))
            if state.failures.count > Self.keptFailures { state.failures.removeFirst(state.failures.count - Self.keptFailures) }
        }
    }

    func snapshot() -> Snapshot {
        state.withLockedValue { state in
            Snapshot(minutes: state.minutes, upstreams: state.upstreams.values.sorted { $0.name < $1.name },
                     failures: state.failures.reversed())
        }
    }

    private func update(_ now: Double, _ change: (inout Minute) -> Void) {
        let start = (now / 60).rounded(.down) * 60
        state.withLockedValue { state in
            if state.minutes.last?.start != start { state.minutes.append(Minute(start: start)) }
            change(&state.minutes[state.minutes.count - 1])
            state.minutes.removeAll { $0.start <= start - Double(Self.keptMinutes * 60) }
        }
    }
}

/// Delivery results counted by class.
protocol ResultCounts {
    var delivered: Int { get set }
    var deferred: Int { get set }
    var failed: Int { get set }
}

extension ResultCounts {
    /// Counts one attempt's `delivered`, `deferred` or `failed`.
    mutating func count(_ result: String) {
        switch result {
        case "delivered": delivered += 1
        case "deferred": deferred += 1
        default: failed += 1
        }
    }
}
