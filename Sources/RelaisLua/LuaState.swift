import CLua
import CLuaBridge

/// One Lua 5.4 state, owned by one Swift object that closes it in `deinit`.
///
/// Every call into Lua that can raise goes through the C bridge in protected
/// mode (`relais_lua_pcall`), and every Swift function Lua calls is reached
/// through a C trampoline that raises on its behalf: a Lua error (a longjmp)
/// never crosses a Swift frame. Not thread-safe: use a state from one thread
/// (one event loop) at a time.
public final class LuaState {
    public typealias SwiftFunction = (LuaState) throws -> Int

    /// The thread Swift works on: the main thread, or the coroutine that
    /// called the Swift function now running.
    private(set) var L: OpaquePointer
    let mainThread: OpaquePointer
    /// The coroutine being driven now, if any (see `LuaCoroutine`).
    var runningCoroutine: LuaCoroutine?
    private let limitsPointer: UnsafeMutablePointer<relais_lua_limits>
    public let limits: LuaLimits
    var functions: [SwiftFunction] = []
    var objects: [Int: any LuaObject] = [:]
    var nextObjectID = 1
    /// The error a script gets when it uses an object after its `release`:
    /// the embedder, which knows what its objects are, names the values
    /// worth keeping instead.
    public var releasedObjectAdvice = "this object was given to a call that has returned; keep the values you need, not the object"
    var objectFunctions: ObjectFunctionIDs?
    /// Coroutine threads whose call returned normally, kept (with their
    /// registry references) for the next calls: a hook call then creates
    /// no thread for the collector to free (`LuaCoroutine`).
    var idleThreads: [(thread: OpaquePointer, reference: Int32)] = []
    /// How many idle threads are kept at most.
    static let idleThreadsKept = 16

    public init(limits: LuaLimits = LuaLimits()) throws {
        self.limits = limits
        limitsPointer = .allocate(capacity: 1)
        limitsPointer.initialize(to: relais_lua_limits())
        limitsPointer.pointee.memory_limit = limits.memoryBytes
        limitsPointer.pointee.memory_hard_limit = limits.memoryBytes + max(limits.memoryBytes / 4, 1 << 20)
        guard let state = relais_lua_newstate(limitsPointer) else {
            limitsPointer.deallocate()
            throw LuaError("cannot create a Lua state")
        }
        L = state
        mainThread = state
        relais_lua_set_dispatcher(luaDispatch)
        relais_lua_extraspace(L).pointee = Unmanaged.passUnretained(self).toOpaque()
        // From here on a thrown error runs deinit, which closes the state.
        guard relais_lua_open_sandbox(L) == LUA_OK else {
            throw LuaError("cannot open the Lua libraries: \(popString())")
        }
    }

    deinit {
        lua_close(mainThread)
        limitsPointer.deallocate()
    }

    // MARK: - Stack

    public var top: Int32 {
        get { lua_gettop(L) }
        set { lua_settop(L, newValue) }
    }

    public func pop(_ count: Int32 = 1) { lua_settop(L, -count - 1) }

    func popString() -> String {
        var length = 0
        let text = lua_tolstring(L, -1, &length).map {
            String(decoding: UnsafeRawBufferPointer(start: $0, count: length), as: UTF8.self)
        } ?? "(error object is not a string)"
        pop()
        return text
    }

    // MARK: - Loading and calling

    /// Loads and runs a text chunk; `chunkName` names it in error messages
    /// (`@path` for files). Returns the chunk's first result.
    @discardableResult
    public func run(_ source: [UInt8], chunkName: String) throws -> LuaValue {
        try load(source, chunkName: chunkName)
        return try call(arguments: 0, results: 1).first ?? .nil
    }

    /// Loads a text chunk and leaves it on the stack as a function.
    public func load(_ source: [UInt8], chunkName: String) throws {
        let status = source.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                relais_lua_load_text(L, chars.baseAddress, chars.count, chunkName)
            }
        }
        guard status == LUA_OK else { throw LuaError(popString()) }
    }

    /// Calls the function below `arguments` values on the stack, with the
    /// instruction budget and memory cap in force; returns its results.
    public func call(arguments: Int32, results: Int32) throws -> [LuaValue] {
        let base = top - arguments - 1
        guard relais_lua_pcall(L, arguments, results, limits.instructionsPerCall) == LUA_OK else {
            throw LuaError(popString())
        }
        defer { top = base }
        return (0..<results).map { value(at: base + 1 + $0) }
    }

    /// Calls a referenced function with the given arguments.
    public func call(_ function: LuaReference, _ arguments: [LuaValue], results: Int32 = 1) throws -> [LuaValue] {
        try pushFunction(function)
        for argument in arguments { push(argument) }
        return try call(arguments: Int32(arguments.count), results: results)
    }

    /// `file:line` where a referenced function is defined.
    public func definition(of function: LuaReference) -> String {
        guard (try? pushFunction(function)) != nil else { return "?" }
        var debug = lua_Debug()
        guard lua_getinfo(L, ">S", &debug) != 0 else { return "?" }
        let source = withUnsafeBytes(of: debug.short_src) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return "\(source):\(debug.linedefined)"
    }

    // MARK: - Globals and Swift functions

    public func setGlobal(_ name: String, _ value: LuaValue) {
        push(value)
        lua_setglobal(L, name)
    }

    /// Registers a Swift function and pushes it. The function reads its
    /// arguments at stack indices 1...n, pushes its results and returns how
    /// many; a thrown error becomes a Lua error at the caller's file:line.
    public func pushFunction(_ function: @escaping SwiftFunction) {
        functions.append(function)
        relais_lua_push_swift_function(L, Int32(functions.count - 1))
    }

    /// A Lua function that calls `function` (so it can be stored in tables).
    public func makeFunction(_ function: @escaping SwiftFunction) -> LuaValue {
        pushFunction(function)
        defer { pop() }
        return value(at: -1)
    }

    /// How many arguments the running Swift function received.
    public var argumentCount: Int32 { lua_gettop(L) }

    public func argument(_ index: Int32) -> LuaValue {
        index <= argumentCount ? value(at: index) : .nil
    }

    /// Runs `body` with `thread` as the thread the stack functions use.
    func on<T>(_ thread: OpaquePointer, _ body: () throws -> T) rethrows -> T {
        let saved = L
        L = thread
        defer { L = saved }
        return try body()
    }

    func dispatch(_ id: Int32, on thread: OpaquePointer) -> Int32 {
        on(thread) { dispatchHere(id) }
    }

    private func dispatchHere(_ id: Int32) -> Int32 {
        guard Int(id) < functions.count else {
            lua_pushstring(L, "unknown Swift function")
            return -1
        }
        do {
            return Int32(try functions[Int(id)](self))
        } catch {
            lua_pushstring(L, "\(error)")
            return -1
        }
    }
}

private let luaDispatch: relais_swift_function = { L, id in
    guard let L, let pointer = relais_lua_extraspace(L).pointee else { return -1 }
    let state = Unmanaged<LuaState>.fromOpaque(pointer).takeUnretainedValue()
    return state.dispatch(id, on: L)
}
