import Foundation
import NIOCore

/// Writes one JSON object field by field into a buffer: the spool's
/// envelope line is written for every message, and Foundation's encoder
/// took a large share of the relay's time for it. Values the writer has no
/// method for are spliced in from `JSONEncoder`.
struct JSONObjectWriter {
    private(set) var buffer: ByteBuffer
    private var isEmpty = true

    init(capacity: Int) {
        buffer = ByteBufferAllocator().buffer(capacity: capacity)
        buffer.writeStaticString("{")
    }

    mutating func field(_ name: String, _ value: String?) {
        guard let value else { return }
        key(name)
        writeString(value)
    }

    mutating func field(_ name: String, _ values: [String]?) {
        guard let values else { return }
        key(name)
        buffer.writeStaticString("[")
        for (index, value) in values.enumerated() {
            if index > 0 { buffer.writeStaticString(",") }
            writeString(value)
        }
        buffer.writeStaticString("]")
    }

    mutating func field(_ name: String, _ values: [String: String]?) {
        guard let values else { return }
        key(name)
        buffer.writeStaticString("{")
        for (index, (label, value)) in values.sorted(by: { $0.key < $1.key }).enumerated() {
            if index > 0 { buffer.writeStaticString(",") }
            writeString(label)
            buffer.writeStaticString(":")
            writeString(value)
        }
        buffer.writeStaticString("}")
    }

    mutating func field(_ name: String, _ value: Bool) {
        key(name)
        if value { buffer.writeStaticString("true") } else { buffer.writeStaticString("false") }
    }

    mutating func field(_ name: String, _ value: Int) {
        key(name)
        buffer.writeString(String(value))
    }

    /// A finite number (Swift's shortest round-trip form is valid JSON).
    mutating func field(_ name: String, _ value: Double) {
        key(name)
        buffer.writeString(value.description)
    }

    /// JSON made elsewhere.
    mutating func field(_ name: String, json: Data) {
        key(name)
        buffer.writeBytes(json)
    }

    /// `value` through `encoder`.
    mutating func field<Value: Encodable>(_ name: String, _ value: Value?, encoder: JSONEncoder) throws {
        guard let value else { return }
        field(name, json: try encoder.encode(value))
    }

    /// The object, closed.
    mutating func finish() -> ByteBuffer {
        buffer.writeStaticString("}")
        return buffer
    }

    private mutating func key(_ name: String) {
        if !isEmpty { buffer.writeStaticString(",") }
        isEmpty = false
        writeString(name)
        buffer.writeStaticString(":")
    }

    /// A JSON string: quote, backslash and control characters escaped, the
    /// rest as UTF-8 (RFC 8259 7).
    private mutating func writeString(_ value: String) {
        buffer.writeStaticString("\"")
        var value = value
        value.withUTF8 { bytes in
            var runStart = 0
            for (index, byte) in bytes.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[runStart..<index]))
                switch byte {
                case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
                case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                default: buffer.writeString(String(format: "\\u%04x", byte))
                }
                runStart = index + 1
            }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[runStart...]))
        }
        buffer.writeStaticString("\"")
    }
}
