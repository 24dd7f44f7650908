import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// Spool files whose messages are gone, kept in `free/` to hold the next
/// messages. Creating a file allocates an inode, and on ext4, after many
/// deletions, that is the costliest step of accepting a message (the
/// allocator reads inode tables looking for one not recently deleted);
/// overwriting a file it already has costs no allocation at all.
///
/// A file is handed out only once its move out of `queue/` is durable: a
/// removal waits in `pending` until a flush that began after it has
/// finished (`flushStarting`, `flushed`). Were a recycled file written
/// while that move could still be undone by a crash, the old queue name
/// could come back holding part of another message. A recycled file is
/// moved to its new queue name before the flush that makes it durable: a
/// crash meanwhile leaves a file whose seal (`SpoolSeal`) fails, set aside.
final class RecycledFiles: Sendable {
    /// A kept file and its size when it was kept (unknown for files an
    /// earlier run left: `Int.max`).
    struct File: Sendable {
        var path: String
        var size: Int
    }

    private struct State {
        var ready: [File] = []
        var pending: [File] = []
        /// Files in `free/` under the flushes that are running.
        var flushing = 0
        var nextName = 0
    }

    let folder: String
    /// Files kept at most; removals beyond are unlinked.
    let capacity: Int
    /// Larger files are unlinked, not kept: the pool holds at most
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
            $0.pending = existing.map { File(path: folder + "/" + $0, size: .max) }
            $0.nextName = highest + 1
        }
    }

    /// A file ready to be overwritten, if any.
    func take() -> File? {
        state.withLockedValue { $0.ready.popLast() }
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
        state.withLockedValue { $0.pending.append(File(path: target, size: Int(status.st_size))) }
        return nil
    }

    /// Called before a filesystem flush: the removals made so far will be
    /// durable when it ends. Flushes may overlap: each hands back what it
    /// covers to `flushed`.
    func flushStarting() -> [File] {
        state.withLockedValue { state in
            defer { state.pending = [] }
            state.flushing += state.pending.count
            return state.pending
        }
    }

    /// Called after the flush that `flushStarting` returned `covered` for succeeded.
    func flushed(_ covered: [File]) {
        state.withLockedValue { state in
            state.flushing -= covered.count
            state.ready.append(contentsOf: covered)
        }
    }

    /// Called after that flush failed: its files wait for the next one.
    func flushFailed(_ covered: [File]) {
        state.withLockedValue { state in
            state.flushing -= covered.count
            state.pending.append(contentsOf: covered)
        }
    }
}
