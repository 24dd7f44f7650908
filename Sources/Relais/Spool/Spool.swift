import Logging
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// The on-disk queue of accepted messages. A message is stored as one file,
/// `queue/<ID>`: its envelope as a JSON line, sealed with the size and
/// CRC-32C of the content that follows (`SpoolSeal`). A file is written in
/// `queue/` (or over a delivered message's file in `free/`, moved in at
/// once), and one flush makes it durable before the 250; a file a crash
/// interrupted fails its seal and is set aside, never delivered.
/// Writes of concurrent messages share one flush (group commit) on a thread
/// pool; no disk I/O happens on an event loop.
public final class Spool: Sendable {
    public let root: String
    /// Reading the queue back (ids, messages, delivery state).
    public let folder: SpoolFolder
    var queueFolder: String { folder.queueFolder }
    var corruptFolder: String { root + "/corrupt" }
    /// Each upstream's health and quota counts (`UpstreamLedger`).
    var upstreamsFolder: String { folder.upstreamsFolder }

    private struct PendingWrite: Sendable {
        var file: DurableFiles.PendingFile
        var promise: EventLoopPromise<Void>
        /// A queued message, its file to begin with this envelope line,
        /// sealed on the thread pool (written over a recycled file when one is ready).
        var envelope: Envelope?
    }

    private let writer: GroupCommitQueue<PendingWrite>
    /// Removals of delivered messages, done in batches on the thread pool.
    private let remover: GroupCommitQueue<PendingRemoval>

    private struct PendingRemoval: Sendable {
        var id: String
        var withState: Bool
        /// Nil when nobody waits for the removal (`discard`).
        var promise: EventLoopPromise<Void>?
    }
    /// Files of delivered messages, overwritten by new ones.
    private let recycled: RecycledFiles
    /// Also runs other work that must stay off the event loops (DKIM signing).
    let threadPool: NIOThreadPool

    /// Creates the folders. Blocking: call at start-up.
    public init(root: String, threadPool: NIOThreadPool, metrics: RelayMetrics? = nil) throws {
        self.root = root
        let folder = SpoolFolder(root: root)
        self.folder = folder
        self.threadPool = threadPool
        let recycled = try RecycledFiles(folder: root + "/free")
        self.recycled = recycled
        self.writer = GroupCommitQueue(threadPool: threadPool) { _, batch in
            let started = NIODeadline.now()
            var sealed: [PendingWrite] = []
            for var write in batch {
                guard let envelope = write.envelope else { sealed.append(write); continue }
                do {
                    write.file.contents.insert(try envelope.encodedLine(seal: SpoolSeal(of: write.file.contents[0])), at: 0)
                    write.file.recycled = recycled.take()
                    sealed.append(write)
                } catch {
                    write.promise.fail(error)
                }
            }
            let covered = recycled.flushStarting()
            let results = DurableFiles.write(sealed.map(\.file))
            if results.contains(where: { if case .success = $0 { true } else { false } }) {
                recycled.flushed(covered)
            } else {
                recycled.flushFailed(covered)
            }
            metrics?.spoolFlush(files: batch.count, seconds: Double((NIODeadline.now() - started).nanoseconds) / 1e9)
            for (write, result) in zip(sealed, results) {
                write.promise.completeWith(result.mapError { $0 as any Error })
            }
        }
        self.remover = GroupCommitQueue(threadPool: threadPool) { _, batch in
            for removal in batch {
                _ = recycled.recycle(folder.path(of: removal.id))
                if removal.withState { unlink(folder.statePath(of: removal.id)) }
                removal.promise?.succeed()
            }
        }
        try DurableFiles.makeFolders([root + "/queue", root + "/corrupt", folder.stateFolder])
    }

    /// Stores the message; the future succeeds once its file is durable,
    /// and fails with a `SystemCallError` otherwise.
    public func store(_ envelope: Envelope, content: ByteBuffer, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        let file = DurableFiles.PendingFile(finalPath: path(of: envelope.id), contents: [content], naming: .namedBeforeFlush)
        writer.submit(PendingWrite(file: file, promise: promise, envelope: envelope))
        return promise.futureResult
    }

    /// Stores a message's delivery state (`state/<ID>`), sharing the flush
    /// of the messages and states written meanwhile.
    func saveState(_ bytes: ByteBuffer, of id: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        let file = DurableFiles.PendingFile(finalPath: folder.statePath(of: id), contents: [bytes],
                                            naming: .renamedWhenDurable(temporaryPath: folder.stateFolder + "/." + id))
        writer.submit(PendingWrite(file: file, promise: promise, envelope: nil))
        return promise.futureResult
    }

    public func path(of id: String) -> String { folder.path(of: id) }

    /// Forgets a message whose delivery is durable elsewhere; its file is
    /// kept to hold a later message (`RecycledFiles`). Blocking. If the move
    /// is lost in a crash, the message is delivered again: at least once,
    /// never zero times.
    func remove(_ id: String) -> SystemCallError? {
        recycled.recycle(path(of: id))
    }

    /// Forgets a delivered message and its delivery state (unless it never
    /// had one `withState`), with the removals of other messages in one pass
    /// on the thread pool.
    func forget(_ id: String, withState: Bool = true, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        remover.submit(PendingRemoval(id: id, withState: withState, promise: promise))
        return promise.futureResult
    }

    /// Removals that may wait undone before `discard` makes its caller wait.
    static let removalsAhead = 256

    /// `forget` for a caller that need not wait: nothing wakes an event loop
    /// when the removal is done. With `removalsAhead` removals already
    /// waiting it returns the future to wait for instead, so removal keeps
    /// pace with delivery and a crash delivers only a few messages twice
    /// (a removal lost in a crash means the message is delivered again, as
    /// with `forget`).
    func discard(_ id: String, withState: Bool, on eventLoop: any EventLoop) -> EventLoopFuture<Void>? {
        guard remover.waiting < Self.removalsAhead else { return forget(id, withState: withState, on: eventLoop) }
        remover.submit(PendingRemoval(id: id, withState: withState, promise: nil))
        return nil
    }

    /// Moves a queued file that `error` (from reading it) shows holds no
    /// whole message to the corrupt folder; logs either way. True when it
    /// was moved: the message has left the queue. Blocking.
    func setAsideIfCorrupt(_ id: String, after error: any Error, logger: Logger) -> Bool {
        guard !(error is SystemCallError) else {
            logger.error("cannot read queued message", metadata: ["id": "\(id)", "error": "\(error)"])
            return false
        }
        logger.error("queued message is corrupt; moved to the corrupt folder", metadata: ["id": "\(id)", "error": "\(error)"])
        if let moveError = quarantine(id) {
            logger.error("cannot move corrupt message", metadata: ["id": "\(id)", "error": "\(moveError)"])
        }
        return true
    }

    /// Moves an unreadable file out of the queue so a person can look at it;
    /// it is never deleted. Blocking.
    private func quarantine(_ id: String) -> SystemCallError? {
        rename(path(of: id), corruptFolder + "/" + id) == 0 ? nil : SystemCallError("rename", path(of: id), errno: errno)
    }
}
