/// Reads the JSON that Relais writes itself (a spool file's envelope line,
/// its state records) value by value, without `JSONDecoder`: draining a
/// backlog reads back every message's envelope and state, and Foundation's
/// decoder took an eighth of the relay's time for it, most of it building
/// a dictionary per object and looking up Codable's generic metadata.
///
/// Strict and small: it throws at anything outside RFC 8259 and at a field
/// named twice in one object, and its callers throw at a field they do not
/// read (one added to the type but not to its reader), and then decode the
/// whole text with `JSONDecoder`, which reads it the same way or says what
/// is wrong with it. It reads bytes it does not own: use it only inside the closure
/// that lends them (`ByteBuffer.withUnsafeReadableBytes`).
struct JSONReader {
    /// Why the reader stopped; the caller falls back to `JSONDecoder`.
    struct Unreadable: Error {}

    private let bytes: UnsafeRawBufferPointer
    private var position = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Reads `bytes` by `read`, which must read all of them but the
    /// whitespace around the value.
    static func read<Value>(_ bytes: UnsafeRawBufferPointer, by read: (inout JSONReader) throws -> Value) throws -> Value {
        var reader = JSONReader(bytes)
        reader.skipSpace()
        let value = try read(&reader)
        try reader.finish()
        return value
    }

    /// Reads an object: `field` is called with each name, the reader at
    /// its value, which `field` must read.
    mutating func readObject(_ field: (inout JSONReader, String) throws -> Void) throws {
        try expect(UInt8(ascii: "{"))
        skipSpace()
        if take(UInt8(ascii: "}")) { return }
        var names: [String] = []
        names.reserveCapacity(16)
        repeat {
            skipSpace()
            let name = try readString()
            guard !names.contains(name) else { throw Unreadable() }
            names.append(name)
            skipSpace()
            try expect(UInt8(ascii: ":"))
            skipSpace()
            try field(&self, name)
            skipSpace()
        } while try nextElement(closingWith: UInt8(ascii: "}"))
    }

    /// Reads an array, `element` reading each of its values.
    mutating func readArray(_ element: (inout JSONReader) throws -> Void) throws {
        try expect(UInt8(ascii: "["))
        skipSpace()
        if take(UInt8(ascii: "]")) { return }
        repeat {
            skipSpace()
            try element(&self)
            skipSpace()
        } while try nextElement(closingWith: UInt8(ascii: "]"))
    }

    /// Reads `null` as nil, any other value by `read`.
    mutating func readOptional<Value>(_ read: (inout JSONReader) throws -> Value) throws -> Value? {
        try take("null") ? nil : read(&self)
    }

    mutating func readStrings() throws -> [String] {
        var strings: [String] = []
        try readArray { strings.append(try $0.readString()) }
        return strings
    }

    mutating func readBool() throws -> Bool {
        if take("true") { return true }
        guard take("false") else { throw Unreadable() }
        return false
    }

    /// An integer written without fraction or exponent.
    mutating func readInt() throws -> Int {
        let text = try readNumberText()
        guard let value = Int(text) else { throw Unreadable() }
        return value
    }

    mutating func readDouble() throws -> Double {
        guard let value = Double(try readNumberText()) else { throw Unreadable() }
        return value
    }

    /// Reads a string, its escapes resolved; it must be valid UTF-8.
    mutating func readString() throws -> String {
        try expect(UInt8(ascii: "\""))
        let start = position
        var ascii = true
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: "\""):
                defer { position += 1 }
                guard ascii else { return try text(start ..< position) }
                return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start ..< position]), as: UTF8.self)
            case UInt8(ascii: "\\"):
                return try readEscapedString(from: start)
            case 0 ..< 0x20:
                throw Unreadable()
            case 0x80...:
                ascii = false
                position += 1
            default:
                position += 1
            }
        }
        throw Unreadable()
    }

    /// The text of the array or object here, found by its brackets and
    /// quotes alone, for a reader that checks it: `JSONDecoder`, or a cache
    /// of values `JSONDecoder` read, matched byte for byte.
    mutating func readRawContainer() throws -> UnsafeRawBufferPointer {
        let start = position
        guard position < bytes.count, bytes[position] == UInt8(ascii: "[") || bytes[position] == UInt8(ascii: "{") else {
            throw Unreadable()
        }
        var depth = 0
        var inString = false
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            if inString {
                if byte == UInt8(ascii: "\\") { position += 1 } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                depth -= 1
                if depth == 0 { return UnsafeRawBufferPointer(rebasing: bytes[start ..< position]) }
            default: break
            }
        }
        throw Unreadable()
    }

    /// Throws unless only whitespace is left.
    private mutating func finish() throws {
        skipSpace()
        guard position == bytes.count else { throw Unreadable() }
    }

    // MARK: - Bytes

    private mutating func skipSpace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    /// True, past it, at `word` (`true`, `false`, `null`).
    private mutating func take(_ word: StaticString) -> Bool {
        let letters = UnsafeRawBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        guard bytes[position...].starts(with: letters) else { return false }
        position += letters.count
        return true
    }

    private mutating func take(_ byte: UInt8) -> Bool {
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    private mutating func expect(_ byte: UInt8) throws {
        guard take(byte) else { throw Unreadable() }
    }

    /// After a member: true at a comma, false at `close`.
    private mutating func nextElement(closingWith close: UInt8) throws -> Bool {
        if take(UInt8(ascii: ",")) { return true }
        try expect(close)
        return false
    }

    private func text(_ range: Range<Int>) throws -> String {
        guard let text = String(validating: bytes[range], as: UTF8.self) else { throw Unreadable() }
        return text
    }

    /// A number as RFC 8259 6 writes it: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    private mutating func readNumberText() throws -> String {
        let start = position
        _ = take(UInt8(ascii: "-"))
        if !take(UInt8(ascii: "0")) { try digits() }
        if take(UInt8(ascii: ".")) { try digits() }
        if take(UInt8(ascii: "e")) || take(UInt8(ascii: "E")) {
            if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
            try digits()
        }
        return try text(start ..< position)
    }

    /// One or more decimal digits.
    private mutating func digits() throws {
        let start = position
        while position < bytes.count, (UInt8(ascii: "0") ... UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
        guard position > start else { throw Unreadable() }
    }

    /// The rest of a string from its first backslash, `start` at its first byte.
    private mutating func readEscapedString(from start: Int) throws -> String {
        var utf8 = Array(bytes[start ..< position])
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: utf8, as: UTF8.self) else { throw Unreadable() }
                return text
            case UInt8(ascii: "\\"):
                try appendEscape(to: &utf8)
            case 0 ..< 0x20:
                throw Unreadable()
            default:
                utf8.append(byte)
            }
        }
        throw Unreadable()
    }

    /// The escape after a backslash, as UTF-8 (RFC 8259 7).
    private mutating func appendEscape(to utf8: inout [UInt8]) throws {
        guard position < bytes.count else { throw Unreadable() }
        let letter = bytes[position]
        position += 1
        switch letter {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(letter)
        case UInt8(ascii: "b"): utf8.append(0x08)
        case UInt8(ascii: "f"): utf8.append(0x0C)
        case UInt8(ascii: "n"): utf8.append(0x0A)
        case UInt8(ascii: "r"): utf8.append(0x0D)
        case UInt8(ascii: "t"): utf8.append(0x09)
        case UInt8(ascii: "u"): try appendUnicodeEscape(to: &utf8)
        default: throw Unreadable()
        }
    }

    /// `\u` and four hex digits; a surrogate must pair with the next such escape.
    private mutating func appendUnicodeEscape(to utf8: inout [UInt8]) throws {
        var scalar = try readHexUnit()
        if (0xD800 ..< 0xDC00).contains(scalar) {
            guard take(UInt8(ascii: "\\")), take(UInt8(ascii: "u")) else { throw Unreadable() }
            let low = try readHexUnit()
            guard (0xDC00 ..< 0xE000).contains(low) else { throw Unreadable() }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
        }
        guard let unicode = Unicode.Scalar(scalar) else { throw Unreadable() }
        utf8.append(contentsOf: unicode.utf8)
    }

    /// Four hex digits.
    private mutating func readHexUnit() throws -> UInt32 {
        guard position + 4 <= bytes.count else { throw Unreadable() }
        var value: UInt32 = 0
        for byte in bytes[position ..< position + 4] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0") ... UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a") ... UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A") ... UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw Unreadable()
            }
            value = value << 4 | UInt32(digit)
        }
        position += 4
        return value
    }
}
