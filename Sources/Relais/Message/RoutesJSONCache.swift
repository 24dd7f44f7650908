import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// The JSON of the route lists envelopes were lately written with or read
/// back from, by value, both ways: a relay sends most mail along a few
/// routes, their smarthost settings are most of an envelope line, and
/// `JSONEncoder` and `JSONDecoder` took a large share of the relay's time
/// (writing each message, reading back each of a backlog). Bounded: past
/// `capacity` distinct values a direction starts afresh.
final class RoutesJSONCache: Sendable {
    static let shared = RoutesJSONCache()
    private struct Entries {
        var json: [[[RouteTarget]]: Data] = [:]
        var routes: [Data: [[RouteTarget]]] = [:]
    }
    private let entries = NIOLockedValueBox(Entries())
    private let capacity = 64

    func json(_ routes: [[RouteTarget]], encoder: JSONEncoder) throws -> Data {
        if let known = entries.withLockedValue({ $0.json[routes] }) { return known }
        let encoded = try encoder.encode(routes)
        entries.withLockedValue { remember(encoded, for: routes, in: &$0.json) }
        return encoded
    }

    /// The routes `json` holds (a value `json(_:encoder:)` made).
    func routes(json: Data) throws -> [[RouteTarget]] {
        if let known = entries.withLockedValue({ $0.routes[json] }) { return known }
        let decoded = try JSONDecoder().decode([[RouteTarget]].self, from: json)
        entries.withLockedValue { remember(decoded, for: json, in: &$0.routes) }
        return decoded
    }

    /// Adds an entry to one direction, starting it afresh when full.
    private func remember<Key, Value>(_ value: Value, for key: Key, in cache: inout [Key: Value]) {
        if cache.count >= capacity { cache.removeAll() }
        cache[key] = value
    }
}
