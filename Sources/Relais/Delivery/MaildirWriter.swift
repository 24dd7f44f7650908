import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// The one way Relais writes into maildirs: the file a message becomes in
/// a maildir, with the maildir's folders made the first time it is used.
/// Both the batched local path and the maildir courier write through it.
/// Every maildir it ever wrote to is listed in `registry` (one absolute
/// path per line, durable before the first message is), so that a start
/// finds the deliveries a crash left in their `tmp/` (`Maildir`).
final class MaildirWriter: Sendable {
    let hostname: String
    let registry: String
    private let logger: Logger
    /// Maildirs whose folders exist already.
    private let prepared = NIOLockedValueBox<[String: Maildir]>([:])
    /// Absolute paths in the registry.
    private let registered: NIOLockedValueBox<Set<String>>
    /// Delivered files, durable in a maildir's `tmp/`, whose move into
    /// `new/` failed: moved by `finishMoves`, or by the next start.
    private let unfinished = NIOLockedValueBox(UnfinishedMoves())

    private struct UnfinishedMoves {
        var moves: [(from: String, to: String)] = []
        /// Something calls `finishMoves` until none is left.
        var retrying = false
    }

    /// Reads the registry and finishes the deliveries a stopped run left
    /// in each maildir it lists. Blocking: call at start-up.
    init(hostname: String, registry: String, logger: Logger) {
        self.hostname = hostname
        self.registry = registry
        self.logger = logger
        let listed = Set((try? DurableFiles.readFile(registry)).map { String(buffer: $0).split(separator: "\n").map(String.init) } ?? [])
        registered = NIOLockedValueBox(listed)
        for path in listed where FileManager.default.fileExists(atPath: path + "/tmp") {
            do {
                let (moved, deleted) = try Maildir(root: path, hostname: hostname).recoverInterruptedDeliveries()
                if moved + deleted > 0 {
                    logger.notice("finished interrupted maildir deliveries", metadata: [
                        "maildir": "\(path)", "moved": "\(moved)", "deleted": "\(deleted)",
                    ])
                }
            } catch {
                logger.error("cannot finish interrupted maildir deliveries", metadata: ["maildir": "\(path)", "error": "\(error)"])
            }
        }
    }

    /// The pending file for `envelope` in the maildir at `folder`, creating
    /// its folders and registering it the first time. Blocking: call on the thread pool.
    func pendingFile(in folder: String, for envelope: Envelope, content: ByteBuffer) throws -> DurableFiles.PendingFile {
        if let maildir = prepared.withLockedValue({ $0[folder] }) {
            return maildir.pendingFile(for: envelope, content: content)
        }
        let maildir = try Maildir(root: folder, hostname: hostname)
        try register(folder)
        prepared.withLockedValue { $0[folder] = maildir }
        return maildir.pendingFile(for: envelope, content: content)
    }

    /// Keeps a delivered file whose move into `new/` failed (its message
    /// was acknowledged once it was durable in `tmp/`) for `finishMoves`.
    func moveLater(_ file: DurableFiles.PendingFile, after error: SystemCallError) {
        guard let temporaryPath = file.temporaryPath else { return }
        logger.error("delivered into the maildir's tmp/ but cannot move it into new/; trying again later and at the next start",
                     metadata: ["file": "\(temporaryPath)", "error": "\(error)"])
        unfinished.withLockedValue { $0.moves.append((temporaryPath, file.finalPath)) }
    }

    /// True when moves wait and nothing retries them yet: the caller then
    /// has `finishMoves` called, now and then, until it returns false.
    func startsRetrying() -> Bool {
        unfinished.withLockedValue { state in
            guard !state.moves.isEmpty, !state.retrying else { return false }
            state.retrying = true
            return true
        }
    }

    /// Tries the moves into `new/` that failed again; those that fail
    /// again keep waiting. A file gone from `tmp/` was moved already (by a
    /// start). Returns whether any is left; when none is, the retrying
    /// ends. Blocking: call on the thread pool.
    func finishMoves() -> Bool {
        let moves = unfinished.withLockedValue { state in
            defer { state.moves = [] }
            return state.moves
        }
        var left: [(from: String, to: String)] = []
        for move in moves {
            if rename(move.from, move.to) == 0 {
                logger.notice("moved a delivered file into the maildir's new/", metadata: ["file": "\(move.to)"])
            } else if access(move.from, F_OK) == 0 {
                left.append(move)
            }
        }
        return unfinished.withLockedValue { state in
            state.moves.append(contentsOf: left)
            state.retrying = !state.moves.isEmpty
            return state.retrying
        }
    }

    private func register(_ folder: String) throws {
        guard let resolved = realpath(folder, nil) else { throw SystemCallError("realpath", folder, errno: errno) }
        let path = String(cString: resolved)
        free(resolved)
        guard !registered.withLockedValue({ $0.contains(path) }) else { return }
        let existed = FileManager.default.fileExists(atPath: registry)
        let fd = open(registry, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemCallError("open", registry, errno: errno) }
        defer { close(fd) }
        let line = Array((path + "\n").utf8)
        guard write(fd, line, line.count) == line.count else { throw SystemCallError("write", registry, errno: errno) }
        guard fsync(fd) == 0 else { throw SystemCallError("fsync", registry, errno: errno) }
        if !existed, let error = DurableFiles.syncFolder(DurableFiles.parentFolder(of: registry)) { throw error }
        registered.withLockedValue { _ = $0.insert(path) }
    }
}
