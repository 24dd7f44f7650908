/// A failure inside Lua, with the message Lua gave (which starts with
/// `file:line:` when Lua knows where it happened).
public struct LuaError: Error, Sendable, CustomStringConvertible, Equatable {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// The limits every state runs under; defaults a normal policy never meets.
public struct LuaLimits: Sendable, Equatable {
    /// VM instructions one call from Swift (a hook) may run.
    public var instructionsPerCall: Int64 = 10_000_000
    /// Bytes one state may allocate.
    public var memoryBytes: Int = 64 * 1024 * 1024

    public init() {}
}
