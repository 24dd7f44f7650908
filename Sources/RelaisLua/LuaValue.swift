/// A Lua string: bytes, which may hold NULs and need not be UTF-8.
public struct LuaString: Sendable, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
    public var bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ text: String) { self.bytes = Array(text.utf8) }
    public init(stringLiteral value: String) { self.init(value) }

    /// The bytes as text; invalid UTF-8 is replaced.
    public var text: String { String(decoding: bytes, as: UTF8.self) }
    public var description: String { text }
}

/// A handle on a Lua value (a function, a table) kept in the registry of the
/// state it came from.
public struct LuaReference: Sendable, Hashable {
    public let reference: Int32
    let stateID: ObjectIdentifier
}

/// A Lua value copied into Swift: the plain data of a config table, an
/// argument or a result. Functions stay in their state, referenced.
public enum LuaValue: Sendable, Equatable {
    case `nil`
    case boolean(Bool)
    case integer(Int64)
    case number(Double)
    case string(LuaString)
    case table(LuaTable)
    case function(LuaReference)
    /// A value that stays in its state and is pushed as itself, not as a
    /// copy (e.g. a notes table shared between hooks).
    case reference(LuaReference)
    /// A Swift object pushed with `LuaState.push(object:)`, by its id.
    case object(Int)
    /// Any other value (light userdata, threads, foreign userdata), by type name.
    case other(String)

    public static func text(_ text: String) -> LuaValue { .string(LuaString(text)) }

    public var isNil: Bool { self == .nil }

    public var stringValue: String? {
        if case .string(let string) = self { return string.text }
        return nil
    }

    /// Integers, and numbers with an exact integer value.
    public var integerValue: Int64? {
        switch self {
        case .integer(let value): return value
        case .number(let value) where value.rounded() == value && abs(value) < 9.2e18: return Int64(value)
        default: return nil
        }
    }

    public var numberValue: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .number(let value): return value
        default: return nil
        }
    }

    public var tableValue: LuaTable? {
        if case .table(let table) = self { return table }
        return nil
    }

    /// The Lua type name, for error messages.
    public var typeName: String {
        switch self {
        case .nil: return "nil"
        case .boolean: return "boolean"
        case .integer, .number: return "number"
        case .string: return "string"
        case .table: return "table"
        case .function: return "function"
        case .reference: return "table"
        case .object: return "userdata"
        case .other(let name): return name
        }
    }
}

/// A Lua table copied into Swift, entries in the order Lua's `next` gave
/// them (array part first).
public struct LuaTable: Sendable, Equatable {
    /// Equal when both hold the same entries, in whatever order.
    public static func == (lhs: LuaTable, rhs: LuaTable) -> Bool {
        lhs.entries.count == rhs.entries.count && lhs.entries.allSatisfy { rhs.entries.contains($0) }
    }

    public struct Entry: Sendable, Equatable {
        public var key: LuaValue
        public var value: LuaValue
    }

    public var entries: [Entry]

    public init(entries: [Entry] = []) { self.entries = entries }

    public subscript(key: String) -> LuaValue {
        entries.first { $0.key == .text(key) }?.value ?? .nil
    }

    /// Values at keys 1, 2, ... up to the first gap.
    public var array: [LuaValue] {
        var result: [LuaValue] = []
        while let entry = entries.first(where: { $0.key == .integer(Int64(result.count + 1)) }) {
            result.append(entry.value)
        }
        return result
    }

    /// Keys that are strings, for checking a config table against the keys it may have.
    public var stringKeys: [String] { entries.compactMap { $0.key.stringValue } }

    /// True when every key is an integer 1...n (an array, possibly empty).
    public var isArray: Bool { array.count == entries.count }

    public static func array(_ values: [LuaValue]) -> LuaTable {
        LuaTable(entries: values.enumerated().map { Entry(key: .integer(Int64($0.offset + 1)), value: $0.element) })
    }

    public static func record(_ fields: [(String, LuaValue)]) -> LuaTable {
        LuaTable(entries: fields.map { Entry(key: .text($0.0), value: $0.1) })
    }
}
