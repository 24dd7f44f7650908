import NIOCore

/// The header section of a message (RFC 5322 2.2) split into fields that a
/// policy can read and edit, with the body kept as received. Untouched
/// fields are written back byte for byte.
struct MessageHeaders {
    struct Field {
        /// The field name as written (empty for a malformed line, kept as is).
        var name: String
        /// The whole field: name, colon, value and folded lines, each line with CRLF.
        var raw: [UInt8]

        /// The value unfolded, without the leading and trailing white space.
        var value: [UInt8] {
            guard let colon = raw.firstIndex(of: UInt8(ascii: ":")) else { return [] }
            var unfolded = raw[(colon + 1)...].filter { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }
            while let first = unfolded.first, first == 32 || first == 9 { unfolded.removeFirst() }
            while let last = unfolded.last, last == 32 || last == 9 { unfolded.removeLast() }
            return Array(unfolded)
        }

        func isNamed(_ other: String) -> Bool { name.lowercased() == other.lowercased() }
    }

    private(set) var fields: [Field] = []
    /// Everything after the header section, the empty line included.
    private(set) var rest: ByteBuffer
    private(set) var changed = false

    init(parsing content: ByteBuffer) {
        var bytes = content
        var current: Field?
        var lines: [Field] = []
        while let newline = bytes.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - bytes.readerIndex + 1
            let line = bytes.getBytes(at: bytes.readerIndex, length: length) ?? []
            if line == [13, 10] || line == [10] { break }
            bytes.moveReaderIndex(forwardBy: length)
            if let first = line.first, first == 32 || first == 9, current != nil {
                current?.raw += line
                continue
            }
            if let field = current { lines.append(field) }
            let name = line.firstIndex(of: UInt8(ascii: ":")).map { String(decoding: line[..<$0], as: UTF8.self) } ?? ""
            current = Field(name: name.contains(" ") ? "" : name, raw: line)
        }
        if let field = current { lines.append(field) }
        fields = lines
        rest = bytes
    }

    func values(named name: String) -> [[UInt8]] {
        fields.filter { $0.isNamed(name) }.map(\.value)
    }

    /// Adds a field at the top (the usual place for trace and policy fields).
    mutating func add(_ name: String, _ value: [UInt8]) throws(HeaderError) {
        fields.insert(try Self.field(name, value), at: 0)
        changed = true
    }

    /// Adds a field at the end of the header section.
    mutating func append(_ name: String, _ value: [UInt8]) throws(HeaderError) {
        fields.append(try Self.field(name, value))
        changed = true
    }

    /// Replaces every field of that name by one, where the first one was.
    mutating func set(_ name: String, _ value: [UInt8]) throws(HeaderError) {
        let field = try Self.field(name, value)
        if let first = fields.firstIndex(where: { $0.isNamed(name) }) {
            fields[first] = field
            fields = fields.enumerated().filter { $0.offset == first || !$0.element.isNamed(name) }.map(\.element)
        } else {
            fields.append(field)
        }
        changed = true
    }

    /// Removes every field of that name; returns how many there were.
    @discardableResult
    mutating func remove(_ name: String) -> Int {
        let before = fields.count
        fields.removeAll { $0.isNamed(name) }
        if fields.count != before { changed = true }
        return before - fields.count
    }

    var body: ByteBuffer {
        var body = rest
        if body.readableBytesView.starts(with: [13, 10]) { body.moveReaderIndex(forwardBy: 2) }
        return body
    }

    func write(into buffer: inout ByteBuffer) {
        for field in fields { buffer.writeBytes(field.raw) }
        var rest = rest
        buffer.writeBuffer(&rest)
    }

    /// A new field, checked: the name is printable ASCII without colon, the
    /// value has no line breaks (no header injection) and the line fits.
    private static func field(_ name: String, _ value: [UInt8]) throws(HeaderError) -> Field {
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 >= 33 && $0 <= 126 && $0 != UInt8(ascii: ":") }) else {
            throw .badName(name)
        }
        guard !value.contains(13), !value.contains(10), !value.contains(0) else { throw .lineBreakInValue(name) }
        let raw = Array(name.utf8) + Array(": ".utf8) + value + [13, 10]
        guard raw.count <= 1000 else { throw .tooLong(name) }
        return Field(name: name, raw: raw)
    }
}

/// Why a policy's header edit was refused; shown to the script as a Lua error.
enum HeaderError: Error, CustomStringConvertible {
    case badName(String)
    case lineBreakInValue(String)
    case tooLong(String)

    var description: String {
        switch self {
        case .badName(let name): return "bad header name \(name.debugDescription)"
        case .lineBreakInValue(let name): return "header \(name) value must not contain CR, LF or NUL"
        case .tooLong(let name): return "header \(name) is longer than 998 octets"
        }
    }
}
