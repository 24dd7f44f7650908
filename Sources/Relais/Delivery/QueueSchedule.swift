import Foundation

/// The `queue` settings. When deliveries are tried again: exponential
/// backoff from `retryMin` to `retryMax` seconds, with jitter, until a
/// recipient has waited `maxAge`; and how much message content the relay
/// queue holds in memory meanwhile (`memory`).
public struct QueueSchedule: Codable, Sendable, Equatable {
    public var retryMin: Double = 60
    public var retryMax: Double = 3600
    public var maxAge: Double = 5 * 86400
    /// Seconds a recipient waits before its sender is told of the delay
    /// (RFC 3464 `Action: delayed`), once.
    public var delayNotice: Double = 4 * 3600
    /// Delay notices for every recipient (NOTIFY=NEVER aside), not only
    /// those that asked with NOTIFY=DELAY.
    public var delayNoticeForAll = false
    /// The memory the relay queue's held message content takes at most (each
    /// message counted as the buffer it takes): new messages kept for their
    /// first attempt, and the attempts under way. Beyond it a message is
    /// read back from the spool when its turn comes.
    public var memory = 64 * 1024 * 1024

    public init() {}

    /// Seconds to wait after the `attempts`-th failed attempt (1-based);
    /// `jitter` (0.9 to 1.1) spreads retries of many messages apart.
    public func delay(afterAttempt attempts: Int, jitter: Double = Double.random(in: 0.9...1.1)) -> Double {
        let exponent = min(max(attempts - 1, 0), 30)
        let base = min(retryMax, retryMin * pow(2, Double(exponent)))
        return base * jitter
    }
}
