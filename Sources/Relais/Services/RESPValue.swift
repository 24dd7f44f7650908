import NIOCore

/// A Redis reply in RESP2, the Redis serialization protocol
/// (https://redis.io/docs/latest/develop/reference/protocol-spec/), and
/// commands encoded as arrays of bulk strings. Pure: no I/O.
enum RESPValue: Equatable, Sendable {
    case simple(String)
    case error(String)
    case integer(Int64)
    case bulk([UInt8])
    /// The null bulk string or null array.
    case null
    case array([RESPValue])

    /// Largest bulk string accepted in a reply.
    static let maxBulk = 64 * 1024 * 1024
    /// Deepest nesting of arrays accepted.
    static let maxDepth = 16

    /// `arguments` as a command: `*N` then `$len` bulk strings.
    static func command(_ arguments: [[UInt8]], into buffer: inout ByteBuffer) {
        buffer.writeString("*\(arguments.count)\r\n")
        for argument in arguments {
            buffer.writeString("$\(argument.count)\r\n")
            buffer.writeBytes(argument)
            buffer.writeString("\r\n")
        }
    }

    /// Takes one complete reply off the front of `buffer`; nil (and
    /// nothing taken) when more bytes are needed.
    static func next(from buffer: inout ByteBuffer) throws -> RESPValue? {
        var cursor = buffer.readerIndex
        guard let value = try parse(buffer, at: &cursor, depth: 0) else { return nil }
        buffer.moveReaderIndex(to: cursor)
        return value
    }

    private static func parse(_ buffer: ByteBuffer, at cursor: inout Int, depth: Int) throws -> RESPValue? {
        guard let line = line(buffer, at: &cursor), let kind = line.first else { return nil }
        let text = String(decoding: line.dropFirst(), as: UTF8.self)
        switch kind {
        case UInt8(ascii: "+"):
            return .simple(text)
        case UInt8(ascii: "-"):
            return .error(text)
        case UInt8(ascii: ":"):
            guard let number = Int64(text) else { throw RESPError("bad integer \(text.debugDescription)") }
            return .integer(number)
        case UInt8(ascii: "$"):
            guard let length = Int(text), length >= -1, length <= maxBulk else { throw RESPError("bad bulk length \(text.debugDescription)") }
            if length == -1 { return .null }
            guard buffer.writerIndex - cursor >= length + 2, let bytes = buffer.getBytes(at: cursor, length: length) else { return nil }
            guard buffer.getBytes(at: cursor + length, length: 2) == [13, 10] else { throw RESPError("bulk string without CRLF") }
            cursor += length + 2
            return .bulk(bytes)
        case UInt8(ascii: "*"):
            guard let count = Int(text), count >= -1 else { throw RESPError("bad array length \(text.debugDescription)") }
            if count == -1 { return .null }
            guard depth < maxDepth else { throw RESPError("arrays nested too deep") }
            var items: [RESPValue] = []
            items.reserveCapacity(min(count, 1024))
            for _ in 0..<count {
                guard let item = try parse(buffer, at: &cursor, depth: depth + 1) else { return nil }
                items.append(item)
            }
            return .array(items)
        default:
            throw RESPError("unknown reply type \(String(UnicodeScalar(kind)).debugDescription)")
        }
    }

    /// The bytes up to the next CRLF, moving the cursor past it; nil when
    /// no CRLF has arrived yet.
    private static func line(_ buffer: ByteBuffer, at cursor: inout Int) -> ArraySlice<UInt8>? {
        let view = buffer.readableBytesView
        let start = view.startIndex + (cursor - buffer.readerIndex)
        guard start < view.endIndex, let cr = view[start...].firstIndex(of: 13), cr + 1 < view.endIndex,
              view[cr + 1] == 10 else { return nil }
        cursor += cr - start + 2
        return ArraySlice(view[start..<cr])
    }
}

/// A reply that breaks the protocol; the connection cannot go on.
struct RESPError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = "Redis protocol error: " + description }
}
