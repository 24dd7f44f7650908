import NIOConcurrencyHelpers
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Spool files whose messages are gone, kept to hold the next messages.
/// Creating a file allocates an inode, and on ext4, after many deletions,
/// that is the costliest step of accepting a message (the allocator reads
/// inode tables looking for one not recently deleted); overwriting a file
/// it already has costs no allocation at all.
///
/// A file comes to a new message in one of two ways:
/// - **Handed over** (`handOver`): a delivered message's file, still at its
///   name in `queue/`, is written over by the next message written, then
///   renamed to the new message's name: one rename, and no removal to wake
///   a thread for. What no message took within a short wait is recycled
///   (`takeDelivered`). A crash between the write and the rename leaves
///   the old name on the new bytes: the file names another message
///   (`SpoolFolder.check`), which `Spool.setAsideIfCorrupt` recycles, since
///   the old message was delivered and the new one never acknowledged.
///   After a power loss the disk may hold part of each under the old name:
///   its seal fails and it is set aside, never delivered.
/// - **Recycled** (`recycle`): moved to `free/`, and handed out only once
///   that move is durable: a removal waits in `pending` until a flush that
///   began after it has finished (`flushStarting`, `flushed`). Such a file
///   is moved to its new queue name before the flush that makes it
///   durable: a crash meanwhile leaves a file whose seal (`SpoolSeal`)
///   fails, set aside.
final class RecycledFiles: Sendable {
    private struct State {
        /// Delivered messages' files in `queue/`, oldest first.
        var delivered = CircularBuffer<String>()
        /// A `takeDelivered` is due (the first file waits since the last).
        var sweepDue = false
        /// Files in `free/` whose move there is durable.
        var ready: [String] = []
        var pending: [String] = []
        /// Files in `free/` under the flushes that are running.
        var flushing = 0
        var nextName = 0
    }

    let folder: String
    /// Files kept in `free/` at most; removals beyond are unlinked.
    let capacity: Int
    /// Larger files are unlinked, not kept: `free/` holds at most
    /// `capacity` × this much disk.
    static let largestKept = 256 * 1024
    private let state = NIOLockedValueBox(State())

    /// Takes the files left in `folder` by an earlier run as pending (their
    /// names become durable with the first flush). Blocking.
    init(folder: String, capacity: Int = 1024) throws(SystemCallError) {
        self.folder = folder
        self.capacity = capacity
        try DurableFiles.makeFolders([folder])
        let existing = try DurableFiles.listFolder(folder)
        let highest = existing.compactMap(Int.init).max() ?? 0
        state.withLockedValue {
            $0.pending = existing.map { folder + "/" + $0 }
            $0.nextName = highest + 1
        }
    }

    /// What became of a delivered file offered to the next message.
    enum HandOver {
        /// It waits, the first since the last `takeDelivered`: the caller
        /// has one done once no message took it in a short while.
        case firstWaiting
        case waiting
        /// `limit` files wait already: the caller recycles this one.
        case refused
    }

    /// Offers the file at `path` (a delivered message's, in `queue/`) to
    /// the next message written; no more than `limit` wait (a crash
    /// delivers their messages again).
    func handOver(_ path: String, limit: Int) -> HandOver {
        state.withLockedValue { state in
            guard state.delivered.count < limit else { return .refused }
            state.delivered.append(path)
            defer { state.sweepDue = true }
            return state.sweepDue ? .waiting : .firstWaiting
        }
    }

    /// Up to `limit` of the delivered files no message took (the oldest),
    /// to recycle, and whether more wait (a `takeDelivered` is still due).
    func takeDelivered(upTo limit: Int = .max) -> (paths: [String], more: Bool) {
        state.withLockedValue { state in
            var paths: [String] = []
            while paths.count < limit, let path = state.delivered.popFirst() { paths.append(path) }
            state.sweepDue = !state.delivered.isEmpty
            return (paths, state.sweepDue)
        }
    }

    /// A file ready to be overwritten, if any: a delivered one first.
    func take() -> String? {
        state.withLockedValue { $0.delivered.popFirst() ?? $0.ready.popLast() }
    }

    /// Moves the file at `path` (a message's, now delivered) into `free/`,
    /// or unlinks it when enough are kept. Blocking.
    func recycle(_ path: String) -> SystemCallError? {
        var status = stat()
        let small = stat(path, &status) == 0 && Int(status.st_size) <= Self.largestKept
        let target = state.withLockedValue { state -> String? in
            guard small, state.ready.count + state.pending.count + state.flushing < capacity else { return nil }
            state.nextName += 1
            return folder + "/\(state.nextName)"
        }
        guard let target else {
            return unlink(path) == 0 ? nil : SystemCallError("unlink", path, errno: errno)
        }
        guard rename(path, target) == 0 else { return SystemCallError("rename", path, errno: errno) }
        state.withLockedValue { $0.pending.append(target) }
        return nil
    }

    /// Called before a filesystem flush: the removals made so far will be
    /// durable when it ends. Flushes may overlap: each hands back what it
    /// covers to `flushed`.
    func flushStarting() -> [String] {
        state.withLockedValue { state in
            defer { state.pending = [] }
            state.flushing += state.pending.count
            return state.pending
        }
    }

    /// Called after the flush that `flushStarting` returned `covered` for succeeded.
    func flushed(_ covered: [String]) {
        state.withLockedValue { state in
            state.flushing -= covered.count
            state.ready.append(contentsOf: covered)
        }
    }

    /// Called after that flush failed: its files wait for the next one.
    func flushFailed(_ covered: [String]) {
        state.withLockedValue { state in
            state.flushing -= covered.count
            state.pending.append(contentsOf: covered)
        }
    }
}
