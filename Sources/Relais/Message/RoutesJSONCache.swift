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
        var routes: [ByteBuffer: [[RouteTarget]]] = [:]
    }
    private let entries = NIOLockedValueBox(Entries())
    private let capacity = 64
    /// How `Envelope.encodedLine` opens a line that has routes.
    private static let opening = ByteBuffer(string: #"{"routes":"#)

    func json(_ routes: [[RouteTarget]], encoder: JSONEncoder) throws -> Data {
        if let known = entries.withLockedValue({ $0.json[routes] }) { return known }
        let encoded = try encoder.encode(routes)
        entries.withLockedValue { remember(encoded, for: routes, in: &$0.json) }
        return encoded
    }

    /// The routes of a JSON object that opens with them, and the object
    /// without them; nil when `object` does not open with routes followed
    /// by another field.
    func routes(openingObject object: ByteBuffer) throws -> (routes: [[RouteTarget]], rest: Data)? {
        let bytes = object.readableBytesView
        let routesStart = bytes.startIndex + Self.opening.readableBytes
        guard bytes.starts(with: Self.opening.readableBytesView),
              let end = Self.endOfContainer(in: bytes, openingAt: routesStart),
              end < bytes.endIndex, bytes[end] == UInt8(ascii: ","),
              let json = object.getSlice(at: routesStart, length: end - routesStart)
        else { return nil }
        var rest = Data("{".utf8)
        rest.append(contentsOf: bytes[(end + 1)...])
        if let known = entries.withLockedValue({ $0.routes[json] }) { return (known, rest) }
        let decoded = try JSONDecoder().decode([[RouteTarget]].self, from: Data(json.readableBytesView))
        // A copy for the key: `json` shares the whole file's storage.
        entries.withLockedValue { remember(decoded, for: ByteBuffer(buffer: json), in: &$0.routes) }
        return (decoded, rest)
    }

    /// Adds an entry to one direction, starting it afresh when full.
    private func remember<Key, Value>(_ value: Value, for key: Key, in cache: inout [Key: Value]) {
        if cache.count >= capacity { cache.removeAll() }
        cache[key] = value
    }

    /// The index just past the JSON array or object that opens at `start`
    /// (strings and their escapes skipped); nil when it does not close.
    private static func endOfContainer(in bytes: ByteBufferView, openingAt start: Int) -> Int? {
        guard start < bytes.endIndex, bytes[start] == UInt8(ascii: "[") || bytes[start] == UInt8(ascii: "{") else { return nil }
        var depth = 0
        var inString = false
        var escaped = false
        for index in start ..< bytes.endIndex {
            let byte = bytes[index]
            if inString {
                if escaped { escaped = false }
                else if byte == UInt8(ascii: "\\") { escaped = true }
                else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                depth -= 1
                if depth == 0 { return index + 1 }
            default: break
            }
        }
        return nil
    }
}
