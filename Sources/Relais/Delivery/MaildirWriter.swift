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
