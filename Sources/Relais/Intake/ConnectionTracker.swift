import NIOConcurrencyHelpers
import NIOCore
import SMTPCore

/// Counts open connections, in total and per client IP, to enforce the
/// connection limits, and knows every open channel so that a graceful stop
/// can ask each one to finish.
public final class ConnectionTracker: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var perIP: [String: Int] = [:]
        /// Waiting for the last connection to close (a graceful stop).
        var emptied: [CheckedContinuation<Void, Never>] = []
    }

    private let state = NIOLockedValueBox(State())
    private let maxConnections: Int
    private let maxPerIP: Int

    public init(maxConnections: Int, maxPerIP: Int) {
        self.maxConnections = maxConnections
        self.maxPerIP = maxPerIP
    }

    /// Admits the connection, or returns the reply that refuses it.
    /// `exempt` clients skip the per-IP limit (not the total).
    func admit(_ channel: any Channel, ip: String, exempt: Bool) -> SMTPReply? {
        state.withLockedValue { state in
            guard state.channels.count < maxConnections else { return .tooManyConnections }
            let fromIP = state.perIP[ip, default: 0]
            guard exempt || fromIP < maxPerIP else { return .tooManyConnectionsFromYou }
            state.channels[ObjectIdentifier(channel)] = channel
            state.perIP[ip] = fromIP + 1
            return nil
        }
    }

    func release(_ channel: any Channel, ip: String) {
        state.withLockedValue { state in
            guard state.channels.removeValue(forKey: ObjectIdentifier(channel)) != nil else { return }
            let remaining = state.perIP[ip, default: 1] - 1
            state.perIP[ip] = remaining > 0 ? remaining : nil
            if state.channels.isEmpty {
                for waiter in state.emptied { waiter.resume() }
                state.emptied = []
            }
        }
    }

    /// Returns once no connection is open.
    func waitUntilEmpty() async {
        await withCheckedContinuation { waiter in
            let resumeNow = state.withLockedValue { state in
                if state.channels.isEmpty { return true }
                state.emptied.append(waiter)
                return false
            }
            if resumeNow { waiter.resume() }
        }
    }

    public var count: Int { state.withLockedValue { $0.channels.count } }

    /// Every open channel, for a graceful stop.
    var channels: [any Channel] { state.withLockedValue { Array($0.channels.values) } }
}
