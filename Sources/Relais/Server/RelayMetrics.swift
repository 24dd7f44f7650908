import CoreMetrics
import NIOConcurrencyHelpers
import Prometheus

/// The relay's metrics, recorded through swift-metrics into one Prometheus
/// registry that `GET /metrics` renders. The few event points (connections,
/// message verdicts, delivery attempts, hooks, reloads, spool flushes) call
/// in here; labels are stages, result classes and upstream names, never a
/// sender or recipient, so cardinality stays bounded.
public final class RelayMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    /// The last hour, for the status page.
    let activity = ActivityHistory()
    private let factory: PrometheusMetricsFactory
    private let counters = NIOLockedValueBox<[Key: CoreMetrics.Counter]>([:])
    private let gauges = NIOLockedValueBox<[Key: CoreMetrics.Gauge]>([:])
    private let timers = NIOLockedValueBox<[Key: CoreMetrics.Timer]>([:])
    private let openConnections = NIOLockedValueBox(0)

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        let seconds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]
        factory.defaultDurationHistogramBuckets = seconds.map { .nanoseconds(Int64($0 * 1e9)) }
        factory.durationHistogramBuckets["relais_hook_duration_seconds"] =
            [0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 1].map { .nanoseconds(Int64($0 * 1e9)) }
        factory.defaultValueHistogramBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256]
        self.factory = factory
        // Shown from the first scrape, at zero, so that rates start right.
        for name in ["relais_connections_total", "relais_messages_accepted_total", "relais_received_bytes_total",
                     "relais_policy_reload_failures_total", "relais_spool_flushes_total", "relais_spool_flushed_files_total"] {
            _ = counter(name)
        }
        gauge("relais_connections_open").record(0)
    }

    // MARK: - Event points

    func connectionOpened() {
        counter("relais_connections_total").increment()
        gauge("relais_connections_open").record(openConnections.withLockedValue { $0 += 1; return $0 })
    }

    func connectionClosed() {
        gauge("relais_connections_open").record(openConnections.withLockedValue { $0 -= 1; return $0 })
    }

    /// A connection turned away before the greeting: `limit`, `policy`, `early_talker`.
    func connectionRefused(_ reason: String) {
        counter("relais_connections_refused_total", [("reason", reason)]).increment()
    }

    /// A reply that refused something at `stage` (`mail`, `rcpt`, `data`, ...).
    func refused(at stage: String, code: Int) {
        counter("relais_messages_refused_total", [("stage", stage), ("class", "\(code / 100)xx")]).increment()
    }

    func accepted(bytes: Int) {
        counter("relais_messages_accepted_total").increment()
        activity.accepted()
        counter("relais_received_bytes_total").increment(by: Int64(bytes))
    }

    /// One recipient's attempt through `upstream`: `delivered`, `deferred` or `failed`.
    func deliveryAttempt(upstream: String, result: String, seconds: Double, reply: String) {
        activity.attempt(upstream: upstream, result: result, seconds: seconds, reply: reply)
        counter("relais_delivery_attempts_total", [("upstream", upstream), ("result", result)]).increment()
        timer("relais_delivery_duration_seconds", [("upstream", upstream)]).recordNanoseconds(Int64(seconds * 1e9))
    }

    func hookCall(stage: String, seconds: Double) {
        counter("relais_hook_calls_total", [("stage", stage)]).increment()
        timer("relais_hook_duration_seconds", [("stage", stage)]).recordNanoseconds(Int64(seconds * 1e9))
    }

    /// A DNS, HTTP or Redis call from a hook ended: `ok`, `error`, or
    /// `cached` (a DNS answer from the cache, no time recorded).
    func hookIOCall(service: String, result: String, seconds: Double?) {
        counter("relais_hook_io_calls_total", [("service", service), ("result", result)]).increment()
        if let seconds {
            timer("relais_hook_io_duration_seconds", [("service", service)]).recordNanoseconds(Int64(seconds * 1e9))
        }
    }

    func policyLoaded(generation: Int) {
        gauge("relais_policy_generation").record(generation)
    }

    func reloadFailed() {
        counter("relais_policy_reload_failures_total").increment()
    }

    /// One group commit: how many files, how long the flush took.
    func spoolFlush(files: Int, seconds: Double) {
        timer("relais_spool_flush_duration_seconds").recordNanoseconds(Int64(seconds * 1e9))
        counter("relais_spool_flushes_total").increment()
        counter("relais_spool_flushed_files_total").increment(by: Int64(files))
    }

    /// Values read at scrape time (queue depth, upstream states).
    func set(_ name: String, _ labels: [(String, String)] = [], to value: Double) {
        gauge(name, labels).record(value)
    }

    /// The Prometheus text exposition.
    func render() -> String { registry.emitToString() }

    // MARK: - Metric objects, made once per name and labels

    /// A metric's name and labels: found without building a string, since
    /// every message records several metrics.
    private struct Key: Hashable {
        var name: String
        var labels: [(String, String)]

        init(_ name: String, _ labels: [(String, String)]) {
            self.name = name
            self.labels = labels
        }

        static func == (left: Key, right: Key) -> Bool {
            left.name == right.name && left.labels.elementsEqual(right.labels) { $0 == $1 }
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(name)
            for (label, value) in labels {
                hasher.combine(label)
                hasher.combine(value)
            }
        }
    }

    private func counter(_ name: String, _ labels: [(String, String)] = []) -> CoreMetrics.Counter {
        cached(counters, name, labels) { CoreMetrics.Counter(label: name, dimensions: labels, factory: factory) }
    }

    private func gauge(_ name: String, _ labels: [(String, String)] = []) -> CoreMetrics.Gauge {
        cached(gauges, name, labels) { CoreMetrics.Gauge(label: name, dimensions: labels, factory: factory) }
    }

    private func timer(_ name: String, _ labels: [(String, String)] = []) -> CoreMetrics.Timer {
        cached(timers, name, labels) { CoreMetrics.Timer(label: name, dimensions: labels, factory: factory) }
    }

    /// The metric for `name` and `labels` in `cache`, made by `make` the first time.
    private func cached<Metric>(_ cache: NIOLockedValueBox<[Key: Metric]>, _ name: String, _ labels: [(String, String)],
                                make: () -> Metric) -> Metric {
        let key = Key(name, labels)
        if let metric = cache.withLockedValue({ $0[key] }) { return metric }
        let metric = make()
        cache.withLockedValue { $0[key] = metric }
        return metric
    }
}
