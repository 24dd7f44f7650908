import CSystemShims
import Foundation
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
///
/// Every small file is recycled, however many `free/` holds already: what
/// it holds beyond `capacity`, the oldest first, a thread of the lowest
/// priority unlinks (`trimSurplus`). Draining a backlog thus removes
/// nothing on the way (an unlink on ext4 frees the inode and its blocks,
/// and on a disk mounted with `discard` waits for the device: it took a
/// fifth of the relay's time), the files wait for new messages to take
/// them, and the disk space the backlog held is given back when the CPU
/// has nothing else to do.
final class RecycledFiles: Sendable {
    private struct State {
        /// Delivered messages' files in `queue/`, oldest first.
        var delivered = CircularBuffer<String>()
        /// A `takeDelivered` is due (the first file waits since the last).
        var sweepDue = false
        /// Files in `free/` whose move there is durable, oldest first.
        var ready = CircularBuffer<String>()
        var pending = CircularBuffer<String>()
        /// Files in `free/` under the flushes that are running.
        var flushing = 0
        var nextName = 0
        /// A thread is unlinking the files beyond `capacity`.
        var trimming = false

        /// Files in `free/`.
        var kept: Int { ready.count + pending.count + flushing }

        /// True when `free/` holds more than `capacity` files and no
        /// thread trims them yet: the caller starts one.
        mutating func startsTrimming(over capacity: Int) -> Bool {
            guard !trimming, kept > capacity else { return false }
            trimming = true
            return true
        }
    }

    let folder: String
    /// Files kept in `free/` for good; those beyond are unlinked at the
    /// lowest priority (`trimSurplus`).
    let capacity: Int
    /// Larger files are unlinked, not kept: `free/` holds at most
    /// `capacity` × this much disk.
    static let largestKept = 256 * 1024
    private let state = NIOLockedValueBox(State())

    /// Takes the files left in `folder` by an earlier run as pending (their
    /// names become durable with the first flush), oldest first. Blocking.
    init(folder: String, capacity: Int = 1024) throws(SystemCallError) {
        self.folder = folder
        self.capacity = capacity
        try DurableFiles.makeFolders([folder])
        let existing = try DurableFiles.listFolder(folder).sorted { (Int($0) ?? 0, $0) < (Int($1) ?? 0, $1) }
        let highest = existing.compactMap(Int.init).max() ?? 0
        changeKept {
            $0.pending = CircularBuffer(existing.map { folder + "/" + $0 })
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
    /// or unlinks it when it is larger than `largestKept`. Blocking.
    func recycle(_ path: String) -> SystemCallError? {
        var status = stat()
        guard stat(path, &status) == 0, Int(status.st_size) <= Self.largestKept else {
            return unlink(path) == 0 ? nil : SystemCallError("unlink", path, errno: errno)
        }
        let target = state.withLockedValue { state -> String in
            state.nextName += 1
            return folder + "/\(state.nextName)"
        }
        guard rename(path, target) == 0 else { return SystemCallError("rename", path, errno: errno) }
        changeKept { $0.pending.append(target) }
        return nil
    }

    /// Applies `change` to the state, then has the files beyond `capacity`
    /// unlinked if it leaves `free/` with more and no thread trims it yet.
    private func changeKept(_ change: (inout State) -> Void) {
        let trims = state.withLockedValue { state in
            change(&state)
            return state.startsTrimming(over: capacity)
        }
        if trims { trimSurplus() }
    }

    /// Unlinks the files beyond `capacity`, the oldest first, on a thread
    /// of its own in the lowest scheduling class; the thread ends when no
    /// file is left beyond. Removing a file kept in `free/` needs no flush:
    /// a crash leaves it there, taken back at the next start.
    private func trimSurplus() {
        let thread = Thread { [self] in
            _ = relais_lower_thread_priority()
            while let path = takeSurplus() { unlink(path) }
        }
        thread.name = "relais-free-trim"
        thread.start()
    }

    /// The oldest file beyond `capacity`; nil when none is (the trimming ends).
    private func takeSurplus() -> String? {
        state.withLockedValue { state in
            guard state.kept > capacity,
                  let path = state.ready.popFirst() ?? state.pending.popFirst()
            else {
                state.trimming = false
                return nil
            }
            return path
        }
    }

    /// Called before a filesystem flush: the removals made so far will be
    /// durable when it ends. Flushes may overlap: each hands back what it
    /// covers to `flushed`.
    func flushStarting() -> [String] {
        state.withLockedValue { state in
            defer { state.pending.removeAll() }
            state.flushing += state.pending.count
            return Array(state.pending)
        }
    }

    /// Called after the flush that `flushStarting` returned `covered` for succeeded.
    func flushed(_ covered: [String]) {
        changeKept { state in
            state.flushing -= covered.count
            state.ready.append(contentsOf: covered)
        }
    }

    /// Called after that flush failed: its files wait for the next one.
    func flushFailed(_ covered: [String]) {
        changeKept { state in
            state.flushing -= covered.count
            state.pending.append(contentsOf: covered)
        }
    }
}
