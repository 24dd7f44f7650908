import Foundation
import RelaisLua

/// When deliveries are tried again: exponential backoff from `retryMin` to
/// `retryMax` seconds, with jitter, until a recipient has waited `maxAge`.
public struct QueueSchedule: Codable, Sendable, Equatable {
    public var retryMin: Double = 60
    public var retryMax: Double = 3600
    public var maxAge: Double = 5 * 86400

    public init() {}

    /// Seconds to wait after the `attempts`-th failed attempt (1-based).
    public func delay(afterAttempt attempts: Int) -> Double {
        let exponent = min(max(attempts - 1, 0), 30)
        let base = min(retryMax, retryMin * pow(2, Double(exponent)))
        return base * Double.random(in: 0.9...1.1)
    }

    static func parse(_ table: LuaTable) throws -> QueueSchedule {
        var schedule = QueueSchedule()
        for key in table.stringKeys where !["retry_min", "retry_max", "max_age"].contains(key) {
            throw LuaError("relais.config: unknown key queue.\(key) (known: retry_min, retry_max, max_age)")
        }
        func seconds(_ key: String) throws -> Double? {
            if table[key].isNil { return nil }
            guard let value = table[key].numberValue, value > 0 else {
                throw LuaError("relais.config: queue.\(key) must be a positive number of seconds")
            }
            return value
        }
        schedule.retryMin = try seconds("retry_min") ?? schedule.retryMin
        schedule.retryMax = try seconds("retry_max") ?? schedule.retryMax
        schedule.maxAge = try seconds("max_age") ?? schedule.maxAge
        guard schedule.retryMin <= schedule.retryMax else {
            throw LuaError("relais.config: queue.retry_min must not exceed queue.retry_max")
        }
        return schedule
    }
}
