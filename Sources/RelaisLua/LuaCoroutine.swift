import CLua
import CLuaBridge

/// One call of a Lua function that may wait. It runs as a coroutine: a
/// Swift function it calls can suspend it (`LuaState.suspend`) until a
/// result arrives (a DNS answer, an HTTP response), and meanwhile the thread
/// serves other calls. The instruction budget counts Lua work only, across
/// the waits. Not thread-safe: drive it on the state's thread.
public final class LuaCoroutine {
    /// How the call ended.
    public enum Outcome: Equatable, Sendable {
        case finished([LuaValue])
        /// An error with its `file:line` message, or a cancellation.
        case failed(String)
    }

    let state: LuaState
    let thread: OpaquePointer
    private let threadReference: Int32
    private let results: Int32
    private var instructionsLeft: Int64
    private var completion: ((Outcome) -> Void)?
    /// Values handed to `resume` while the coroutine was still running (the
    /// result was at hand before it yielded); they resume it once it has.
    private var early: [LuaValue]?
    private(set) var isRunning = false
    /// Set by `LuaState.suspend`: the next yield is a wait, not a stray
    /// `coroutine.yield` at the top of the call.
    var awaitsResult = false
    /// Counts the waits, so that a late or repeated result cannot resume a
    /// later wait.
    var waitNumber = 0

    /// Whether the call has ended (finished, failed or cancelled).
    public var isDone: Bool { completion == nil }

    init(state: LuaState, thread: OpaquePointer, threadReference: Int32, results: Int32,
         completion: @escaping (Outcome) -> Void) {
        self.state = state
        self.thread = thread
        self.threadReference = threadReference
        self.results = results
        self.instructionsLeft = state.limits.instructionsPerCall
        self.completion = completion
    }

    /// Ends a waiting call with `reason`; a result arriving later is ignored.
    public func cancel(_ reason: String) {
        finish(.failed(reason))
    }

    /// Continues a suspended call; `values` become the results of the Swift
    /// function that suspended it.
    func resume(with values: [LuaValue], wait: Int) {
        guard !isDone, awaitsResult, wait == waitNumber, early == nil else { return }
        guard !isRunning else {
            early = values
            return
        }
        awaitsResult = false
        state.on(thread) { for value in values { state.push(value) } }
        drive(arguments: Int32(values.count))
    }

    /// Runs the coroutine until it finishes, fails or waits.
    func drive(arguments: Int32) {
        var arguments = arguments
        while !isDone {
            isRunning = true
            let outer = state.runningCoroutine
            state.runningCoroutine = self
            var count: Int32 = 0
            let status = relais_lua_resume(thread, state.mainThread, arguments, &count, &instructionsLeft)
            state.runningCoroutine = outer
            isRunning = false
            switch status {
            case LUA_YIELD:
                guard awaitsResult else {
                    return finish(.failed("coroutine.yield cannot be used at the top of a hook"))
                }
                guard let values = early else { return }
                early = nil
                awaitsResult = false
                state.on(thread) { for value in values { state.push(value) } }
                arguments = Int32(values.count)
            case LUA_OK:
                let values = state.on(thread) { () -> [LuaValue] in
                    let top = state.top
                    let first = top - count + 1
                    let wanted = results < 0 ? count : min(results, count)
                    let values = (0..<wanted).map { state.value(at: first + $0) }
                    return values + Array(repeating: LuaValue.nil, count: max(0, Int(results) - Int(wanted)))
                }
                return finish(.finished(values))
            default:
                return finish(.failed(state.on(thread) { state.popString() }))
            }
        }
    }

    private func finish(_ outcome: Outcome) {
        guard let completion else { return }
        self.completion = nil
        early = nil
        keepOrRelease(thread, after: outcome)
        completion(outcome)
    }

    /// Keeps the thread of a call that returned normally for the next call
    /// (`LuaState.idleThreads`), its stack emptied; a thread that failed,
    /// was cancelled while waiting or is beyond the kept number is left to
    /// the collector.
    private func keepOrRelease(_ thread: OpaquePointer, after outcome: Outcome) {
        guard threadReference != LUA_NOREF else { return }
        if case .finished = outcome, lua_status(thread) == LUA_OK, state.idleThreads.count < LuaState.idleThreadsKept {
            lua_settop(thread, 0)
            state.idleThreads.append((thread, threadReference))
        } else {
            luaL_unref(state.mainThread, relais_lua_registryindex(), threadReference)
        }
    }
}

/// The handle a suspending Swift function keeps: give it the result.
public struct LuaSuspension {
    let coroutine: LuaCoroutine
    let wait: Int

    /// Resumes the call with `values` as the waiting function's results.
    public func resume(_ values: [LuaValue]) {
        coroutine.resume(with: values, wait: wait)
    }

    /// Whether the call still waits (not cancelled, not timed out).
    public var isWaiting: Bool { !coroutine.isDone && coroutine.waitNumber == wait }
}

extension LuaState {
    /// Calls a referenced function as a coroutine; `completion` runs when it
    /// ends (at once when it never waits). Keep the coroutine to cancel it.
    @discardableResult
    public func start(_ function: LuaReference, _ arguments: [LuaValue], results: Int32 = 1,
                      completion: @escaping (LuaCoroutine.Outcome) -> Void) -> LuaCoroutine {
        let thread: OpaquePointer
        let reference: Int32
        if let idle = idleThreads.popLast() {
            (thread, reference) = idle
        } else {
            guard let made = lua_newthread(mainThread) else {
                completion(.failed("cannot create a Lua coroutine"))
                return LuaCoroutine(state: self, thread: mainThread, threadReference: LUA_NOREF, results: results) { _ in }
            }
            thread = made
            reference = luaL_ref(mainThread, relais_lua_registryindex())
        }
        let coroutine = LuaCoroutine(state: self, thread: thread, threadReference: reference, results: results,
                                     completion: completion)
        let pushed: Bool = on(thread) {
            guard (try? pushFunction(function)) != nil else { return false }
            for argument in arguments { push(argument) }
            return true
        }
        guard pushed else {
            coroutine.cancel("a value from another Lua state cannot be called here")
            return coroutine
        }
        coroutine.drive(arguments: Int32(arguments.count))
        return coroutine
    }

    /// Suspends the coroutine running the current Swift function: `begin`
    /// receives the handle to resume it with, and the Swift function must
    /// return what this returns. Throws where Lua cannot wait (outside a
    /// hook, inside a coroutine the script made, inside a metamethod).
    public func suspend(_ function: String, _ begin: (LuaSuspension) -> Void) throws -> Int {
        try requireSuspendable(function)
        guard let coroutine = runningCoroutine else { return 0 }
        coroutine.awaitsResult = true
        coroutine.waitNumber += 1
        begin(LuaSuspension(coroutine: coroutine, wait: coroutine.waitNumber))
        return Int(RELAIS_LUA_SUSPEND)
    }

    /// Throws unless the running Swift function could suspend its caller:
    /// check before starting work whose result must resume it.
    public func requireSuspendable(_ function: String) throws {
        guard let coroutine = runningCoroutine, coroutine.thread == L, lua_isyieldable(L) != 0 else {
            throw LuaError("\(function) can only wait inside a hook (not while the policy loads, "
                + "nor inside coroutine.wrap, a metamethod or a sort comparator)")
        }
    }
}
