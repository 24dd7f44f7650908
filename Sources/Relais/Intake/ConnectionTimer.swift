import NIOCore

/// The clock a connection reads. The server's is the system's monotonic
/// clock; tests use one they move by hand.
protocol ConnectionClock: Sendable {
    var now: NIODeadline { get }
}

/// The system's monotonic clock.
struct SystemClock: ConnectionClock {
    var now: NIODeadline { .now() }
}

/// The time rules of one connection as a plain state machine: the greeting
/// held back from clients outside the relay networks (any byte before it
/// marks an early talker), the idle limit between commands (RFC 5321
/// 4.5.3.2.7) and between blocks of message text (4.5.3.2.6), and the pause
/// after a failed authentication. The channel handler says what happened
/// and when, asks what is due, and arms one timer for `nextCheck`; the
/// machine has no timers of its own, so it is tested with made-up instants.
struct ConnectionTimer {
    enum Phase: Equatable {
        /// The greeting is held back until the instant given.
        case greeting(until: NIODeadline)
        /// Reading commands.
        case commands
        /// Reading message text (DATA or BDAT).
        case message
        /// Input waits, with no limit (the spool is making a message durable).
        case waiting
        /// Input waits until the instant given (after a failed authentication).
        case paused(until: NIODeadline)
        case closed
    }

    /// What the handler must do now.
    enum Due: Equatable {
        /// Send the greeting that was held back.
        case greet
        /// The pause is over: read input again.
        case resume
        /// The client was silent for too long: `421 4.4.2` and close.
        case timeout
    }

    private(set) var phase: Phase
    private var lastActivity: NIODeadline
    let commandTimeout: TimeAmount
    let dataTimeout: TimeAmount

    /// A connection opened at `now`; with a `greetingDelay` the greeting waits.
    init(now: NIODeadline, greetingDelay: TimeAmount?, commandTimeout: TimeAmount, dataTimeout: TimeAmount) {
        self.lastActivity = now
        self.commandTimeout = commandTimeout
        self.dataTimeout = dataTimeout
        if let greetingDelay, greetingDelay > .zero {
            phase = .greeting(until: now + greetingDelay)
        } else {
            phase = .commands
        }
    }

    /// The client sent bytes at `now`.
    mutating func received(at now: NIODeadline) {
        lastActivity = now
    }

    /// The connection moved on to `phase` at `now`; idle time counts from here.
    mutating func enter(_ phase: Phase, at now: NIODeadline) {
        guard self.phase != .closed else { return }
        self.phase = phase
        lastActivity = now
    }

    /// When to ask `due` next; nil when nothing can become due.
    var nextCheck: NIODeadline? {
        switch phase {
        case .greeting(let until), .paused(let until): return until
        case .commands: return lastActivity + commandTimeout
        case .message: return lastActivity + dataTimeout
        case .waiting, .closed: return nil
        }
    }

    /// What is due at `now`, if anything; moves the machine on.
    mutating func due(at now: NIODeadline) -> Due? {
        guard let deadline = nextCheck, now >= deadline else { return nil }
        switch phase {
        case .greeting:
            enter(.commands, at: now)
            return .greet
        case .paused:
            enter(.commands, at: now)
            return .resume
        case .commands, .message:
            phase = .closed
            return .timeout
        case .waiting, .closed:
            return nil
        }
    }
}
