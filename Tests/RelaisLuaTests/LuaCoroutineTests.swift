import RelaisLua
import Testing

/// Calls that wait: a Swift function suspends the coroutine, Swift resumes
/// it later with the result, and other calls run in between.
struct LuaCoroutineTests {
    /// A state with `wait(x)`, which suspends until the test resumes it,
    /// and `handler`, the chunk's returned function.
    private final class Fixture {
        let state: LuaState
        let handler: LuaReference
        private let box = Box()

        init(_ source: String, limits: LuaLimits = LuaLimits()) throws {
            state = try LuaState(limits: limits)
            let box = self.box
            state.setGlobal("wait", state.makeFunction { state in
                try state.suspend("wait") { box.waiting.append($0) }
            })
            guard case .function(let reference) = try state.run(Array(source.utf8), chunkName: "@hook.lua") else {
                throw LuaError("the chunk returns no function")
            }
            handler = reference
        }

        var suspensions: [LuaSuspension] { box.waiting }

        @discardableResult
        func start(_ arguments: [LuaValue] = [], into outcomes: OutcomeList) -> LuaCoroutine {
            state.start(handler, arguments) { outcomes.items.append($0) }
        }
    }

    private final class Box { var waiting: [LuaSuspension] = [] }
    private final class OutcomeList { var items: [LuaCoroutine.Outcome] = [] }

    @Test func aWaitingCallResumesWithTheResult() throws {
        let fixture = try Fixture("return function(x) local got = wait(x) return got .. '!' end")
        let outcomes = OutcomeList()
        fixture.start([.text("a")], into: outcomes)
        fixture.start([.text("b")], into: outcomes)
        #expect(outcomes.items.isEmpty)
        #expect(fixture.suspensions.count == 2)
        fixture.suspensions[1].resume([.text("second")])
        fixture.suspensions[0].resume([.text("first")])
        #expect(outcomes.items == [.finished([.text("second!")]), .finished([.text("first!")])])
    }

    @Test func aCallThatEndedLendsItsThreadToTheNextOneButAFailedOrCancelledCallDoesNot() throws {
        // `calls` counts the calls each thread has run (and keeps every thread alive).
        let fixture = try Fixture("""
            calls = {}
            return function(mode)
              local thread = coroutine.running()
              calls[thread] = (calls[thread] or 0) + 1
              if mode == "fail" then error("boom") end
              if mode == "wait" then wait() end
              return calls[thread]
            end
            """)
        let outcomes = OutcomeList()
        for _ in 0..<3 { fixture.start([.text("return")], into: outcomes) }
        #expect(outcomes.items == [.finished([.integer(1)]), .finished([.integer(2)]), .finished([.integer(3)])])

        fixture.start([.text("fail")], into: outcomes)
        fixture.start([.text("return")], into: outcomes)
        fixture.start([.text("wait")], into: outcomes).cancel("timed out")
        fixture.start([.text("return")], into: outcomes)
        let later = Array(outcomes.items.dropFirst(3))
        #expect(later.count == 4)
        #expect(later[1] == .finished([.integer(1)]) && later[3] == .finished([.integer(1)]))
        #expect(later[2] == .failed("timed out"))
    }

    @Test func aCallThatNeverWaitsEndsAtOnce() throws {
        let fixture = try Fixture("return function(x) return x * 2 end")
        let outcomes = OutcomeList()
        let coroutine = fixture.start([.integer(21)], into: outcomes)
        #expect(outcomes.items == [.finished([.integer(42)])])
        #expect(coroutine.isDone)
    }

    @Test func waitsInsidePcallWork() throws {
        let fixture = try Fixture("return function() local ok, v = pcall(wait, 1) return tostring(ok) .. v end")
        let outcomes = OutcomeList()
        fixture.start(into: outcomes)
        fixture.suspensions[0].resume([.text("x")])
        #expect(outcomes.items == [.finished([.text("truex")])])
    }

    @Test func errorsAfterAWaitCarryFileAndLine() throws {
        let fixture = try Fixture("return function()\n wait()\n error('broken')\nend")
        let outcomes = OutcomeList()
        fixture.start(into: outcomes)
        fixture.suspensions[0].resume([])
        #expect(outcomes.items == [.failed("hook.lua:3: broken")])
    }

    @Test func theBudgetCountsAcrossWaits() throws {
        var limits = LuaLimits()
        limits.instructionsPerCall = 300_000
        let fixture = try Fixture("return function() for i = 1, 40000 do end wait() for i = 1, 40000 do end return 'done' end",
                                  limits: limits)
        let outcomes = OutcomeList()
        fixture.start(into: outcomes)
        fixture.suspensions[0].resume([])
        #expect(outcomes.items == [.finished([.text("done")])])
        let greedy = try Fixture("return function() for i = 1, 200000 do end wait() for i = 1, 200000 do end return 'done' end",
                                 limits: limits)
        let failed = OutcomeList()
        greedy.start(into: failed)
        greedy.suspensions[0].resume([])
        guard case .failed(let message)? = failed.items.first else { Issue.record("expected a failure"); return }
        #expect(message.contains("instruction budget exhausted"))
    }

    @Test func aCancelledCallIgnoresItsResult() throws {
        let fixture = try Fixture("return function() return wait() end")
        let outcomes = OutcomeList()
        let coroutine = fixture.start(into: outcomes)
        coroutine.cancel("took too long")
        fixture.suspensions[0].resume([.text("late")])
        #expect(outcomes.items == [.failed("took too long")])
        #expect(!fixture.suspensions[0].isWaiting)
    }

    @Test func aResultGivenBeforeTheYieldStillArrives() throws {
        let state = try LuaState()
        state.setGlobal("now", state.makeFunction { state in
            try state.suspend("now") { $0.resume([.integer(7)]) }
        })
        guard case .function(let handler) = try state.run(Array("return function() return now() + 1 end".utf8),
                                                          chunkName: "@hook.lua") else { return }
        let outcomes = OutcomeList()
        state.start(handler, []) { outcomes.items.append($0) }
        #expect(outcomes.items == [.finished([.integer(8)])])
    }

    @Test func waitingIsRefusedWhereLuaCannotWait() throws {
        let fixture = try Fixture("""
            return function()
              local co = coroutine.wrap(function() return wait() end)
              return co()
            end
            """)
        let outcomes = OutcomeList()
        fixture.start(into: outcomes)
        guard case .failed(let message)? = outcomes.items.first else { Issue.record("expected a failure"); return }
        #expect(message.contains("wait can only wait inside a hook"))
        #expect(throws: LuaError.self) { try fixture.state.run(Array("wait()".utf8), chunkName: "@load.lua") }
    }

    @Test func aStrayYieldFailsTheCall() throws {
        let fixture = try Fixture("return function() coroutine.yield() return 1 end")
        let outcomes = OutcomeList()
        fixture.start(into: outcomes)
        #expect(outcomes.items == [.failed("coroutine.yield cannot be used at the top of a hook")])
    }
}
