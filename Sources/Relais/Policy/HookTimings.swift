import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// How long hook calls take: a histogram with logarithmic buckets (eight
/// per power of two, from 125 ns), cheap enough to record every call.
/// The relay logs its summary when it stops; `relais run` operators see
/// what their policy costs.
public final class HookTimings: Sendable {
    public struct Summary: Sendable, CustomStringConvertible {
        public var calls: Int
        public var median: Double
        public var p99: Double
        public var max: Double

        public var description: String {
            String(format: "calls=%d median=%.1fµs p99=%.1fµs max=%.1fµs", calls, median * 1e6, p99 * 1e6, max * 1e6)
        }
    }

    private static let bucketsPerOctave = 8.0
    private static let smallest = 125e-9
    private static let bucketCount = 200

    private struct State {
        var buckets = [Int](repeating: 0, count: HookTimings.bucketCount)
        var calls = 0
        var max: Double = 0
    }

    private let state = NIOLockedValueBox(State())

    /// Where each call is also counted, by stage (the admin endpoint's metrics).
    private let metrics: RelayMetrics?

    public init(metrics: RelayMetrics? = nil) {
        self.metrics = metrics
    }

    func record(_ seconds: Double) {
        let index = seconds <= Self.smallest ? 0
            : min(Self.bucketCount - 1, Int((log2(seconds / Self.smallest) * Self.bucketsPerOctave).rounded(.up)))
        state.withLockedValue { state in
            state.buckets[index] += 1
            state.calls += 1
            if seconds > state.max { state.max = seconds }
        }
    }

    /// Records a call of the `stage` hooks that began at `start` and has
    /// just ended (waits on DNS, HTTP or Redis included).
    func record(_ stage: HookStage, since start: NIODeadline) {
        let seconds = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        record(seconds)
        metrics?.hookCall(stage: stage.rawValue, seconds: seconds)
    }

    public var summary: Summary {
        state.withLockedValue { state in
            Summary(calls: state.calls, median: Self.quantile(0.5, state), p99: Self.quantile(0.99, state), max: state.max)
        }
    }

    /// The upper edge of the bucket holding the quantile.
    private static func quantile(_ q: Double, _ state: State) -> Double {
        guard state.calls > 0 else { return 0 }
        let target = Int((Double(state.calls) * q).rounded(.up))
        var seen = 0
        for (index, count) in state.buckets.enumerated() {
            seen += count
            if seen >= target { return smallest * pow(2, Double(index) / bucketsPerOctave) }
        }
        return state.max
    }
}
