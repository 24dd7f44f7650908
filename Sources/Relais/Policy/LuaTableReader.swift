import RelaisLua

/// Reads the fields of one table a policy passed to `relais.<function>{...}`
/// into plain Swift values. Every error names the function and the field
/// (`relais.smarthost: port must be a positive integer`); the Lua bridge
/// adds the policy's `file:line`. The one place where Lua tables become
/// the data model's values.
struct LuaTableReader {
    let table: LuaTable
    /// What the errors start with: `relais.smarthost`, `relais.config`.
    let function: String
    /// The table's path inside the argument (`queue.` for `queue = {...}`).
    let prefix: String

    init(_ table: LuaTable, function: String, prefix: String = "") {
        self.table = table
        self.function = function
        self.prefix = prefix
    }

    func error(_ text: String) -> LuaError {
        LuaError("\(function): \(text)")
    }

    func has(_ key: String) -> Bool { !table[key].isNil }

    /// Refuses any key outside `known`, listing the known ones.
    func rejectUnknownKeys(_ known: [String], listing: Bool = true) throws {
        for key in table.stringKeys where !known.contains(key) {
            let name = prefix.isEmpty ? key.debugDescription : prefix + key
            throw error("unknown key \(name)" + (listing ? " (known: \(known.joined(separator: ", ")))" : ""))
        }
    }

    func string(_ key: String) -> String? { table[key].stringValue }

    /// A string that must be there; `message` says what it is for.
    func requiredString(_ key: String, _ message: String) throws -> String {
        guard let value = table[key].stringValue, !value.isEmpty else { throw error(message) }
        return value
    }

    func flag(_ key: String, default fallback: Bool) throws -> Bool {
        switch table[key] {
        case .nil: return fallback
        case .boolean(let value): return value
        default: throw error("\(prefix)\(key) must be true or false")
        }
    }

    /// A whole number in `1..<limit`; nil when absent.
    func positiveInteger(_ key: String, below limit: Int64 = 1_000_000) throws -> Int? {
        if table[key].isNil { return nil }
        guard let value = table[key].integerValue, value > 0, value < limit else {
            throw error("\(prefix)\(key) must be a positive integer")
        }
        return Int(value)
    }

    /// A number of seconds up to `maximum` (zero allowed only with
    /// `allowZero`); nil when absent.
    func seconds(_ key: String, maximum: Double, allowZero: Bool = false) throws -> Double? {
        if table[key].isNil { return nil }
        guard let value = table[key].numberValue, value <= maximum, allowZero ? value >= 0 : value > 0 else {
            throw error("\(prefix)\(key) must be a \(allowZero ? "" : "positive ")number of seconds")
        }
        return value
    }

    /// A nested table, read with the same function name and a longer prefix.
    func table(_ key: String, _ message: String) throws -> LuaTableReader? {
        if table[key].isNil { return nil }
        guard let nested = table[key].tableValue else { throw error(message) }
        return LuaTableReader(nested, function: function, prefix: prefix + key + ".")
    }
}
