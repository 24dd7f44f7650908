import NIOConcurrencyHelpers
import NIOCore

/// New messages the journal made durable whose file in `queue/` is not
/// written yet (`SpoolJournal`): a message delivered before its file is
/// due never gets one, which saves creating, renaming and recycling a
/// file per message. A file is written when it is due: at the next
/// checkpoint (which resets the journal), before any write to the message's
/// file (a state record, a rewrite), at a stop, or once the message has
/// waited `Spool.unwrittenWait` (so `relais queue list`, which reads the
/// folder, sees a message that stays). Until then the spool reads the
/// message from here. Used by the spool's writer and its callers, from any
/// thread.
final class UnwrittenFiles: Sendable {
    private struct Message {
        /// The file's bytes: its envelope line and content (`Spool.file(for:in:)`).
        var pieces: [ByteBuffer]
        var since: NIODeadline
        /// The writer is writing its file now.
        var writing = false
        /// Delivered while its file was being written: the writer recycles it.
        var delivered = false
    }

    private struct State {
        var messages: [String: Message] = [:]
        /// A write of the overdue files is scheduled.
        var overdueScheduled = false
    }

    private let state = NIOLockedValueBox(State())

    /// Keeps the messages' file bytes; true when the caller is to have the
    /// overdue files written after `Spool.unwrittenWait` (none is scheduled yet).
    func add(_ messages: [(id: String, pieces: [ByteBuffer])], at now: NIODeadline) -> Bool {
        state.withLockedValue { state in
            for message in messages { state.messages[message.id] = Message(pieces: message.pieces, since: now) }
            guard !state.overdueScheduled, !messages.isEmpty else { return false }
            state.overdueScheduled = true
            return true
        }
    }

    /// The file's bytes of a message whose file is not written, if it is one.
    func pieces(of id: String) -> [ByteBuffer]? {
        state.withLockedValue { $0.messages[id]?.pieces }
    }

    /// A message left the queue: true when it has no file to remove, as
    /// it was never written (it is forgotten here), or is being written
    /// now (the writer recycles it once written, `finishWriting`).
    func drop(_ id: String) -> Bool {
        state.withLockedValue { state in
            guard let message = state.messages[id] else { return false }
            if message.writing {
                state.messages[id]?.delivered = true
            } else {
                state.messages[id] = nil
            }
            return true
        }
    }

    /// The messages whose file is to be written now, marked as being
    /// written: all of them, or those that waited since `before` or longer.
    func takeForWriting(before deadline: NIODeadline? = nil) -> [(id: String, pieces: [ByteBuffer])] {
        state.withLockedValue { state in
            var taken: [(id: String, pieces: [ByteBuffer])] = []
            for (id, message) in state.messages where !message.writing && deadline.map({ message.since <= $0 }) ?? true {
                state.messages[id]?.writing = true
                taken.append((id, message.pieces))
            }
            return taken
        }
    }

    /// After the writer wrote (`written`) or failed to write the files it
    /// took: the written ones are forgotten here, the failed ones wait for
    /// the next try. Returns the written ones delivered meanwhile, whose
    /// file the caller recycles.
    func finishWriting(_ taken: [String], written: Set<String>) -> [String] {
        state.withLockedValue { state in
            var delivered: [String] = []
            for id in taken {
                guard let message = state.messages[id] else { continue }
                if written.contains(id) || message.delivered {
                    state.messages[id] = nil
                    if message.delivered && written.contains(id) { delivered.append(id) }
                } else {
                    state.messages[id]?.writing = false
                }
            }
            return delivered
        }
    }

    /// When the oldest file not written is due, counted from `wait` after
    /// it came; nil (and no write scheduled any more) when none waits.
    func nextDue(after wait: TimeAmount) -> NIODeadline? {
        state.withLockedValue { state in
            let oldest = state.messages.values.lazy.filter { !$0.writing }.map(\.since).min()
            state.overdueScheduled = oldest != nil
            return oldest.map { $0 + wait }
        }
    }
}
