import Foundation

/// The circuit breaker of one upstream, as a plain state machine (Postfix's
/// dead-destination marking, KumoMTA's suspended queues). Consecutive
/// connection failures mark it down for a growing interval, during which
/// nobody connects; then one probe at a time may, and a success closes the
/// breaker. A throttling reply pauses it and halves its connections. Every
/// method takes the time, so it is tested without waiting.
struct UpstreamHealth: Codable, Sendable, Equatable {
    enum State: Codable, Sendable, Equatable {
        case up
        /// No connection until `until` (seconds since 1970).
        case down(until: Double)
        /// One connection is finding out whether the upstream is back.
        case probing
    }

    /// What a delivery may do now.
    enum Admission: Equatable {
        case connect
        /// Connect: this is the one probe.
        case probe
        /// Do not connect; try elsewhere, or again at `retryAt`.
        case skip(reason: String, retryAt: Double)
    }

    /// A change worth one log line.
    enum Transition: Equatable {
        case down(until: Double, reason: String)
        case probing
        case up
        case paused(until: Double, reason: String)
    }

    private(set) var state = State.up
    private(set) var consecutiveFailures = 0
    /// How long the next down period lasts.
    private(set) var downInterval: Double?
    /// After a throttling reply: no new transactions until then.
    private(set) var pausedUntil: Double?
    private(set) var throttles = 0
    /// Fewer connections than configured while the upstream throttles.
    private(set) var connectionCap: Int?
    private(set) var lastFailure: String?

    init() {}

    mutating func admit(at now: Double, _ settings: UpstreamHealthSettings) -> (Admission, Transition?) {
        if case .down(let until) = state, now >= until, !isPaused(at: now) {
            state = .probing
            return (.probe, .probing)
        }
        if let (reason, retryAt) = refusal(at: now, settings) { return (.skip(reason: reason, retryAt: retryAt), nil) }
        return (.connect, nil)
    }

    /// Why nobody may open a connection at `now` (paused, down, a probe
    /// under way; once a down period is over only `admit`'s probe may), and
    /// when to try again; nil when up.
    func refusal(at now: Double, _ settings: UpstreamHealthSettings) -> (reason: String, retryAt: Double)? {
        if let pausedUntil, isPaused(at: now) {
            return ("paused after a throttling reply until \(Self.clock(pausedUntil))", pausedUntil)
        }
        switch state {
        case .up: return nil
        case .down(let until): return ("down until \(Self.clock(until))" + (lastFailure.map { " (\($0))" } ?? ""), until)
        case .probing: return ("down, a probe connection is under way", now + settings.downMin)
        }
    }

    private func isPaused(at now: Double) -> Bool { pausedUntil.map { now < $0 } ?? false }

    /// `up`, `down` (probing included) or `paused`, as the metrics label it.
    func stateClass(at now: Double) -> String {
        if isPaused(at: now) { return "paused" }
        return state == .up ? "up" : "down"
    }

    /// A connection opened: the breaker closes. A `delivered` transaction
    /// also ends throttling, one connection back at a time.
    mutating func succeeded(delivered: Bool, maxConnections: Int) -> Transition? {
        consecutiveFailures = 0
        downInterval = nil
        if delivered {
            throttles = 0
            if let cap = connectionCap { connectionCap = cap + 1 < maxConnections ? cap + 1 : nil }
        }
        guard state != .up else { return nil }
        state = .up
        return .up
    }

    /// A connection could not be had (refused, timed out, no greeting, TLS failed).
    mutating func failed(_ reason: String, at now: Double, _ settings: UpstreamHealthSettings) -> Transition? {
        lastFailure = reason
        switch state {
        case .up:
            consecutiveFailures += 1
            guard consecutiveFailures >= settings.failures else { return nil }
            return markDown(now, interval: settings.downMin, reason: reason)
        case .probing:
            let interval = min((downInterval ?? settings.downMin) * 2, settings.downMax)
            return markDown(now, interval: interval, reason: reason)
        case .down:
            return nil
        }
    }

    /// The upstream said to slow down (RFC 5321 421, or 4.7.x / rate wording):
    /// pause it for a growing interval and halve its connections. A second
    /// such reply while already paused (a transaction that began before the
    /// pause) is the same event: no longer pause, no second log line.
    mutating func throttled(_ reason: String, at now: Double, _ settings: UpstreamHealthSettings,
                            maxConnections: Int) -> Transition? {
        guard !isPaused(at: now) else { return nil }
        let pause = min(settings.downMin * Double(1 << min(throttles, 20)), settings.downMax)
        throttles += 1
        connectionCap = max(1, (connectionCap ?? maxConnections) / 2)
        lastFailure = reason
        if state == .probing { state = .up }
        pausedUntil = now + pause
        return .paused(until: now + pause, reason: reason)
    }

    private mutating func markDown(_ now: Double, interval: Double, reason: String) -> Transition {
        downInterval = interval
        state = .down(until: now + interval)
        return .down(until: now + interval, reason: reason)
    }

    /// A person's word for the state at `now`: `up`, `down until T`, `probing`, `paused until T`.
    func summary(at now: Double) -> String {
        if let pausedUntil, now < pausedUntil { return "paused until \(Self.clock(pausedUntil))" }
        switch state {
        case .up: return "up"
        case .down(let until): return now < until ? "down until \(Self.clock(until))" : "down, probe due"
        case .probing: return "probing"
        }
    }

    /// `HH:MM:SS` UTC.
    static func clock(_ time: Double) -> String {
        let seconds = Int(time) % 86400
        return String(format: "%02d:%02d:%02dZ", seconds / 3600, seconds % 3600 / 60, seconds % 60)
    }
}

/// `health = { failures, down_min, down_max }` of a smarthost.
public struct UpstreamHealthSettings: Codable, Hashable, Sendable {
    /// Consecutive connection failures that mark the upstream down.
    public var failures = 3
    /// Seconds of the first down period; each failed probe doubles it.
    public var downMin: Double = 10
    public var downMax: Double = 600

    public init() {}
}
