import NIOCore
@testable import Relais
import Testing

/// The connection's time rules on a clock moved by hand.
struct ConnectionTimerTests {
    /// A clock that only moves when told to.
    final class ManualClock: ConnectionClock, @unchecked Sendable {
        private(set) var now = NIODeadline.uptimeNanoseconds(1_000_000_000)
        func advance(by amount: TimeAmount) { now = now + amount }
    }

    private let clock = ManualClock()

    private func timer(greetingDelay: TimeAmount? = nil) -> ConnectionTimer {
        ConnectionTimer(now: clock.now, greetingDelay: greetingDelay, commandTimeout: .seconds(300), dataTimeout: .seconds(600))
    }

    @Test func greetingIsHeldBackForTheDelay() {
        var timer = timer(greetingDelay: .seconds(1))
        clock.advance(by: .milliseconds(999))
        #expect(timer.due(at: clock.now) == nil)
        clock.advance(by: .milliseconds(1))
        #expect(timer.due(at: clock.now) == .greet)
        #expect(timer.phase == .commands)
        #expect(timer.nextCheck == clock.now + .seconds(300))
    }

    @Test func noDelayGreetsAtOnce() {
        #expect(timer().phase == .commands)
        #expect(timer(greetingDelay: .zero).phase == .commands)
    }

    @Test func inputExtendsTheIdleLimit() {
        var timer = timer()
        clock.advance(by: .seconds(299))
        timer.received(at: clock.now)
        clock.advance(by: .seconds(299))
        #expect(timer.due(at: clock.now) == nil)
        clock.advance(by: .seconds(1))
        #expect(timer.due(at: clock.now) == .timeout)
        #expect(timer.phase == .closed)
        #expect(timer.nextCheck == nil)
    }

    @Test func messageTextHasTheDataTimeout() {
        var timer = timer()
        timer.enter(.message, at: clock.now)
        clock.advance(by: .seconds(599))
        #expect(timer.due(at: clock.now) == nil)
        clock.advance(by: .seconds(1))
        #expect(timer.due(at: clock.now) == .timeout)
    }

    @Test func waitingForTheSpoolNeverTimesOut() {
        var timer = timer()
        timer.enter(.waiting, at: clock.now)
        clock.advance(by: .hours(2))
        #expect(timer.due(at: clock.now) == nil)
        #expect(timer.nextCheck == nil)
        timer.enter(.commands, at: clock.now)
        #expect(timer.nextCheck == clock.now + .seconds(300))
    }

    @Test func pauseEndsInResume() {
        var timer = timer()
        timer.enter(.paused(until: clock.now + .seconds(2)), at: clock.now)
        clock.advance(by: .seconds(1))
        #expect(timer.due(at: clock.now) == nil)
        clock.advance(by: .seconds(1))
        #expect(timer.due(at: clock.now) == .resume)
        #expect(timer.phase == .commands)
    }

    @Test func closedStaysClosed() {
        var timer = timer()
        timer.enter(.closed, at: clock.now)
        timer.enter(.commands, at: clock.now)
        #expect(timer.phase == .closed)
        clock.advance(by: .hours(1))
        #expect(timer.due(at: clock.now) == nil)
    }
}
