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

    @Test func aWholeCommandExtendsTheLimitAndBytesDoNot() {
        var timer = timer()
        clock.advance(by: .seconds(200))
        timer.received(1, at: clock.now)
        clock.advance(by: .seconds(100))
        #expect(timer.due(at: clock.now) == .timeout)
        timer = self.timer()
        clock.advance(by: .seconds(299))
        timer.commandCompleted(at: clock.now)
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

    @Test func aTricklingTransferMeetsItsDeadline() {
        var timer = ConnectionTimer(now: clock.now, greetingDelay: nil, commandTimeout: .seconds(300),
                                    dataTimeout: .seconds(600), maxDataTime: .seconds(60))
        timer.enter(.message, at: clock.now)
        // One byte every 5 s keeps the idle limit happy but buys only 1/10240 s each.
        for _ in 0..<14 {
            clock.advance(by: .seconds(5))
            if timer.due(at: clock.now) != nil { break }
            timer.received(1, at: clock.now)
        }
        #expect(timer.phase == .closed)
    }

    @Test func aFastTransferEarnsMoreTime() {
        var timer = ConnectionTimer(now: clock.now, greetingDelay: nil, commandTimeout: .seconds(300),
                                    dataTimeout: .seconds(600), maxDataTime: .seconds(60))
        timer.enter(.message, at: clock.now)
        timer.received(10 * 1024 * 100, at: clock.now)     // 100 s worth at the minimum rate
        clock.advance(by: .seconds(150))
        #expect(timer.due(at: clock.now) == nil)
        clock.advance(by: .seconds(11))
        #expect(timer.due(at: clock.now) == .timeout)
    }

    @Test func theSessionEnds() {
        var timer = ConnectionTimer(now: clock.now, greetingDelay: nil, commandTimeout: .seconds(300),
                                    dataTimeout: .seconds(600), maxSessionTime: .seconds(500))
        for _ in 0..<4 {
            clock.advance(by: .seconds(120))
            timer.commandCompleted(at: clock.now)
            #expect(timer.due(at: clock.now) == nil)
        }
        clock.advance(by: .seconds(20))
        #expect(timer.due(at: clock.now) == .timeout)
    }

    @Test func waitingForTheSpoolNeverTimesOut() {
        var timer = timer()
        timer.enter(.waiting, at: clock.now)
        clock.advance(by: .minutes(20))
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
