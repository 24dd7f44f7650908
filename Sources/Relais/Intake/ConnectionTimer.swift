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
/// marks an early talker); a command line must be complete within the
/// command timeout (RFC 5321 4.5.3.2.7; bytes of an unfinished line do not
/// extend it, so a client trickling a byte now and then is cut off); the
/// idle limit between blocks of message text (4.5.3.2.6) and a deadline for
/// the whole transfer that grows only with the bytes received; a limit on
/// the whole session; and the pause after a failed authentication. The channel handler says what happened
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

    /// Octets per second a transfer must keep up, beyond `maxDataTime`.
    static let minimumDataRate = 10 * 1024

    private(set) var phase: Phase
    private var lastActivity: NIODeadline
    /// The transfer under way must end by then (moved on by the bytes received).
    private var transferDeadline: NIODeadline?
    private let sessionEnds: NIODeadline
    let commandTimeout: TimeAmount
    let dataTimeout: TimeAmount
    let maxDataTime: TimeAmount

    /// A connection opened at `now`; with a `greetingDelay` the greeting waits.
    init(now: NIODeadline, greetingDelay: TimeAmount?, commandTimeout: TimeAmount, dataTimeout: TimeAmount,
         maxDataTime: TimeAmount = .minutes(10), maxSessionTime: TimeAmount = .hours(1)) {
        self.lastActivity = now
        self.commandTimeout = commandTimeout
        self.dataTimeout = dataTimeout
        self.maxDataTime = maxDataTime
        self.sessionEnds = now + maxSessionTime
        if let greetingDelay, greetingDelay > .zero {
            phase = .greeting(until: now + greetingDelay)
        } else {
            phase = .commands
        }
    }

    /// The client sent `count` octets at `now`. In message text they count
    /// as activity and buy time for the transfer; between commands only a
    /// whole line does (`commandCompleted`).
    mutating func received(_ count: Int, at now: NIODeadline) {
        guard phase == .message else { return }
        lastActivity = now
        transferDeadline = transferDeadline.map { $0 + .nanoseconds(Int64(count) * 1_000_000_000 / Int64(Self.minimumDataRate)) }
    }

    /// A whole command line arrived at `now`: the next one has its own time.
    mutating func commandCompleted(at now: NIODeadline) {
        if phase == .commands { lastActivity = now }
    }

    /// The connection moved on to `phase` at `now`; idle time counts from here.
    mutating func enter(_ phase: Phase, at now: NIODeadline) {
        guard self.phase != .closed else { return }
        if phase == .message && self.phase != .message { transferDeadline = now + maxDataTime }
        if phase != .message { transferDeadline = nil }
        self.phase = phase
        lastActivity = now
    }

    /// When to ask `due` next; nil when nothing can become due.
    var nextCheck: NIODeadline? {
        let deadline: NIODeadline
        switch phase {
        case .greeting(let until), .paused(let until): deadline = until
        case .commands: deadline = lastActivity + commandTimeout
        case .message: deadline = min(lastActivity + dataTimeout, transferDeadline ?? .distantFuture)
        // The spool's answer is awaited whatever the time: cutting the
        // client off then would have it send the message again.
        case .waiting, .closed: return nil
        }
        return min(deadline, sessionEnds)
    }

    /// What is due at `now`, if anything; moves the machine on.
    mutating func due(at now: NIODeadline) -> Due? {
        guard let deadline = nextCheck, now >= deadline else { return nil }
        if now >= sessionEnds && phase != .closed {
            phase = .closed
            return .timeout
        }
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
