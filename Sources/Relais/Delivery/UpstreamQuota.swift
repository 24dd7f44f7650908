/// `quota = { per_minute, per_hour, per_day }` of a smarthost: messages it
/// takes in each fixed window (UTC minute, hour, day).
public struct UpstreamQuota: Codable, Hashable, Sendable {
    public var perMinute: Int?
    public var perHour: Int?
    public var perDay: Int?

    public init(perMinute: Int? = nil, perHour: Int? = nil, perDay: Int? = nil) {
        self.perMinute = perMinute
        self.perHour = perHour
        self.perDay = perDay
    }

    /// Each limit split between `nodes` (at least one message each).
    func divided(by nodes: Int) -> UpstreamQuota {
        guard nodes > 1 else { return self }
        let share = { (limit: Int?) in limit.map { max(1, $0 / nodes) } }
        return UpstreamQuota(perMinute: share(perMinute), perHour: share(perHour), perDay: share(perDay))
    }

    /// Each limit with its window length in seconds and its name.
    var windows: [(limit: Int, seconds: Double, name: String)] {
        [(perMinute, 60, "per_minute"), (perHour, 3600, "per_hour"), (perDay, 86400, "per_day")]
            .compactMap { limit, seconds, name in limit.map { ($0, seconds, name) } }
    }
}

/// How much of its quota an upstream has used, per window: a plain value
/// kept durably beside the spool so that a restart does not reset it.
struct QuotaUsage: Codable, Sendable, Equatable {
    /// Window length in seconds -> (window start, messages counted in it).
    private(set) var counts: [String: Window] = [:]

    struct Window: Codable, Sendable, Equatable {
        var start: Double
        var used: Int
    }

    /// Why no message may go at `now`, and when the full window opens
    /// again; nil when every window has room.
    func refusal(at now: Double, _ quota: UpstreamQuota) -> (reason: String, opensAt: Double)? {
        for window in quota.windows {
            let start = (now / window.seconds).rounded(.down) * window.seconds
            if let current = counts[window.name], current.start == start, current.used >= window.limit {
                return ("quota \(window.name) = \(window.limit) used up", start + window.seconds)
            }
        }
        return nil
    }

    /// Counts one message at `now` in every window.
    mutating func reserve(at now: Double, _ quota: UpstreamQuota) {
        for window in quota.windows {
            let start = (now / window.seconds).rounded(.down) * window.seconds
            let used = counts[window.name].map { $0.start == start ? $0.used : 0 } ?? 0
            counts[window.name] = Window(start: start, used: used + 1)
        }
    }

    /// Gives back a reservation made at `reservedAt` that sent nothing.
    mutating func release(reservedAt: Double, _ quota: UpstreamQuota) {
        for window in quota.windows {
            let start = (reservedAt / window.seconds).rounded(.down) * window.seconds
            if let current = counts[window.name], current.start == start, current.used > 0 {
                counts[window.name] = Window(start: start, used: current.used - 1)
            }
        }
    }

    /// Messages counted in the window `name` (`per_day`) of length `seconds` that holds `now`.
    func used(_ name: String, seconds: Double, at now: Double) -> Int {
        let start = (now / seconds).rounded(.down) * seconds
        return counts[name].map { $0.start == start ? $0.used : 0 } ?? 0
    }

    /// `per_day 12/2000` for each window, as `relais queue list` shows it.
    func summary(at now: Double, _ quota: UpstreamQuota) -> String {
        quota.windows.map { window in
            "\(window.name) \(used(window.name, seconds: window.seconds, at: now))/\(window.limit)"
        }.joined(separator: ", ")
    }
}
