import RelaisLua
import Testing

struct LuaStateTests {
    private func run(_ source: String, _ state: LuaState? = nil) throws -> LuaValue {
        try (state ?? LuaState()).run(Array(source.utf8), chunkName: "@policy.lua")
    }

    @Test func valuesRoundTrip() throws {
        let state = try LuaState()
        let values: [LuaValue] = [
            .nil, .boolean(true), .boolean(false), .integer(42), .integer(Int64.min), .number(1.5),
            .string(LuaString(bytes: [0x61, 0x00, 0x62, 0xFF])),
            .table(.array([.integer(1), .text("two")])),
            .table(.record([("name", .text("x")), ("nested", .table(.record([("deep", .boolean(true))])))])),
        ]
        for value in values {
            state.push(value)
            #expect(state.value(at: -1) == value)
            state.pop()
        }
    }

    @Test func stringsKeepEmbeddedNULs() throws {
        #expect(try run("return #'a\\0b'") == .integer(3))
    }

    static let sandboxed: [String] = [
        "return io", "return dofile", "return loadfile", "return string.dump", "return os.execute",
        "return os.getenv", "return os.remove", "return package", "return require", "return debug",
    ]

    @Test(arguments: sandboxed)
    func sandboxHidesUnsafeFunctions(_ source: String) throws {
        #expect(try run(source) == .nil)
    }

    @Test func sandboxKeepsSafeLibraries() throws {
        #expect(try run("return string.upper('a') .. table.concat({1,2}) .. math.floor(2.5) .. utf8.char(233)") == .text("A122é"))
        #expect(try run("return type(os.time()) .. type(os.date('%Y')) .. type(os.clock())") == .text("numberstringnumber"))
        #expect(try run("local co = coroutine.wrap(function() coroutine.yield(1) end) return co()") == .integer(1))
    }

    @Test func binaryChunksAreRefused() throws {
        #expect(try run("return select(2, load('\\27Lua'))").stringValue?.contains("binary") == true)
    }

    @Test func errorsCarryFileAndLine() {
        #expect(throws: LuaError("policy.lua:2: boom")) { try run("local x = 1\nerror('boom')") }
        #expect(throws: LuaError("policy.lua:1: attempt to index a nil value (global 'nothing')")) {
            try run("return nothing.field")
        }
    }

    @Test func syntaxErrorsCarryFileAndLine() {
        #expect(throws: LuaError("policy.lua:1: unexpected symbol near ')'")) { try run("return )") }
    }

    @Test func endlessLoopsExhaustTheBudget() throws {
        var limits = LuaLimits()
        limits.instructionsPerCall = 100_000
        let state = try LuaState(limits: limits)
        #expect(throws: LuaError("policy.lua:1: instruction budget exhausted")) { try run("while true do end", state) }
        // A script cannot catch the exhaustion and go on.
        #expect(throws: LuaError.self) { try run("pcall(function() while true do end end) return 'escaped'", state) }
        // Inside a coroutine too.
        #expect(throws: LuaError.self) { try run("coroutine.wrap(function() while true do end end)()", state) }
        // The state still works afterwards.
        #expect(try run("return 1 + 1", state) == .integer(2))
    }

    @Test func allocationIsCapped() throws {
        var limits = LuaLimits()
        limits.memoryBytes = 4 * 1024 * 1024
        let state = try LuaState(limits: limits)
        #expect(throws: LuaError.self) { try run("local t = {} for i = 1, 1e8 do t[i] = i end", state) }
        #expect(throws: LuaError.self) { try run("return string.rep('x', 1e9)", state) }
        #expect(throws: LuaError.self) { try run("local ok = pcall(string.rep, 'x', 1e9) return 'caught'", state) }
        #expect(try run("return 'still alive'", state) == .text("still alive"))
    }

    @Test func swiftFunctionErrorsPointAtTheCaller() throws {
        let state = try LuaState()
        state.setGlobal("fail", state.makeFunction { _ in throw LuaError("refused") })
        #expect(throws: LuaError("policy.lua:3: refused")) { try run("local a = 1\nlocal b = 2\nfail()", state) }
    }

    @Test func swiftFunctionsReceiveArgumentsAndReturnResults() throws {
        let state = try LuaState()
        state.setGlobal("add", state.makeFunction { state in
            let sum = (state.argument(1).integerValue ?? 0) + (state.argument(2).integerValue ?? 0)
            state.push(.integer(sum))
            return 1
        })
        #expect(try run("return add(2, 3)", state) == .integer(5))
        #expect(try run("return coroutine.wrap(function() return add(4, 5) end)()", state) == .integer(9))
    }

    final class Counter: LuaObject {
        var count = 0
        var luaTypeName: String { "counter" }
        var luaMethodNames: Set<String> { ["increment"] }
        func luaField(_ name: String, state: LuaState) throws -> LuaValue {
            name == "count" ? .integer(Int64(count)) : .nil
        }
        func luaSetField(_ name: String, _ value: LuaValue, state: LuaState) throws {
            guard name == "count", let number = value.integerValue else { throw LuaError("counter.\(name) is read-only") }
            count = Int(number)
        }
        func luaCall(_ method: String, _ arguments: [LuaValue], state: LuaState) throws -> [LuaValue] {
            count += Int(arguments.first?.integerValue ?? 1)
            return [.integer(Int64(count))]
        }
    }

    @Test func objectsExposeFieldsAndMethods() throws {
        let state = try LuaState()
        let counter = Counter()
        state.push(object: counter)
        let id = state.value(at: -1)
        state.pop()
        state.setGlobal("counter", id)
        #expect(try run("counter:increment(2) counter:increment() return counter.count", state) == .integer(3))
        #expect(try run("counter.count = 10 return counter.count", state) == .integer(10))
        #expect(throws: LuaError("policy.lua:1: counter.other is read-only")) { try run("counter.other = 1", state) }
        #expect(throws: LuaError.self) { try run("counter.increment()", state) }
        #expect(try run("return tostring(counter)", state) == .text("counter"))
        #expect(counter.count == 10)
    }

    /// A hook's `msg` holds the message's content: it must be freed when
    /// the hook returns, not when Lua's collector gets to a userdata of a
    /// few bytes (thousands of messages later).
    @Test func aReleasedObjectIsFreedAtOnceAndAKeptUserdataSaysWhy() throws {
        let state = try LuaState()
        weak var released: Counter?
        do {
            let counter = Counter()
            released = counter
            let reference = state.register(counter)
            state.setGlobal("kept", .reference(reference))
            #expect(try run("return kept:increment()", state) == .integer(1))
            state.release(reference)
        }
        #expect(released == nil)
        #expect(throws: LuaError("policy.lua:1: this object was given to a call that has returned; "
                    + "keep the values you need, not the object")) {
            try run("return kept.count", state)
        }
        state.releasedObjectAdvice = "keep msg.id, not msg"
        #expect(throws: LuaError("policy.lua:1: keep msg.id, not msg")) { try run("return kept.count", state) }
    }
}

struct NestedCallTests {
    @Test func aSwiftFunctionCallingBackIntoLuaKeepsTheBudget() throws {
        var limits = LuaLimits()
        limits.instructionsPerCall = 100_000
        let state = try LuaState(limits: limits)
        state.setGlobal("callback", state.makeFunction { state in
            guard case .function(let function) = state.argument(1) else { return 0 }
            _ = try state.call(function, [])
            return 0
        })
        // The loop after the nested call still runs under the budget.
        #expect(throws: LuaError.self) {
            try state.run(Array("callback(function() end) while true do end".utf8), chunkName: "@nested.lua")
        }
    }
}
