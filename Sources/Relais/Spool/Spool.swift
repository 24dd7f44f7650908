import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// The on-disk queue of accepted messages. A message is stored as one file,
/// `queue/<ID>`: its envelope as a JSON line, sealed with the size and
/// CRC-32C of the content that follows (`SpoolSeal`), and after the content
/// a record of its delivery state per attempt saved (`StateRecord`). A file is written in
/// `queue/`, or over a delivered message's file (`RecycledFiles`: still in
/// `queue/`, or kept in `free/`) renamed at once, and one flush makes it
/// durable before the 250: a `syncfs`, or for a small new message an
/// `fdatasync` of the journal that holds its bytes too (`SpoolJournal`);
/// a file a crash interrupted fails its seal and is set aside, never
/// delivered, or is written back from the journal. A message the journal
/// holds gets its file only when it stays queued (`UnwrittenFiles`).
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
        enum Content: Sendable {
            /// A newly accepted message: its file sealed on the thread pool
            /// and written over a recycled file when one is ready.
            case message(Envelope, ByteBuffer)
            /// A queued message's file written anew, with one state record
            /// (none when nil), in place of the old one.
            case rewrite(Envelope, ByteBuffer, MessageState?)
            /// A state record appended to a queued message's file.
            case state(MessageState)
            /// No file: the deliveries noted in the journal are written
            /// there (`SpoolJournal.noteDelivered`), with no flush.
            case deliveries
            /// No file of its own: the files of messages that waited
            /// `unwrittenWait` unwritten are written, with no flush (the
            /// journal holds them until the next checkpoint); the next such
            /// write is scheduled on the event loop.
            case overdueFiles(any EventLoop)
        }

        var id: String
        var content: Content
        /// Nil when nobody waits (`deliveries`).
        var promise: EventLoopPromise<Void>?

        /// A new message small enough for the journal (`SpoolJournal`), the
        /// journal's deliveries, or the overdue files: nothing that needs a
        /// flush of the filesystem.
        var isJournaled: Bool {
            switch content {
            case .message(_, let content): content.readableBytes <= Spool.largestJournaled
            case .deliveries, .overdueFiles: true
            case .rewrite, .state: false
            }
        }
    }

    /// Larger messages are made durable by a flush of the filesystem, as
    /// their file is most of what it writes anyway. At this size, 64 of
    /// them fill the journal, so checkpoints still come seldom; a 100 KiB
    /// message relayed through the journal costs less than one with its
    /// own file (`scripts/bench-relay 5000 102400`: 9% faster).
    static let largestJournaled = 256 * 1024
    /// The write-ahead log new messages are made durable in; nil when it
    /// could not be made (a disk too small for it): every batch then
    /// flushes the filesystem.
    private let journal: SpoolJournal?
    /// Why there is no journal, for the caller to log.
    public let journalUnavailable: SystemCallError?
    /// Messages whose file a start wrote back from the journal (after a
    /// crash lost it); the caller logs it.
    public let restoredFromJournal: Int
    /// Files a crash left in the queue of messages the journal records as
    /// delivered (the removal was lost); a start recycles them, and the
    /// caller logs it.
    public let removedAfterCrash: Int
    /// A `deliveries` write is submitted (or scheduled) and not yet done.
    private let deliveriesQueued = NIOLockedValueBox(false)
    /// Journaled messages whose file is not written yet.
    private let unwritten = UnwrittenFiles()

    private let writer: GroupCommitQueue<PendingWrite>
    /// Reads of queued messages, in batches on the thread pool: a queue
    /// being drained reads many messages at once, in one hop for all of
    /// them instead of one each.
    private let reader: GroupCommitQueue<PendingRead>

    private struct PendingRead: Sendable {
        var id: String
        var promise: EventLoopPromise<SpoolEntry>
    }
    /// Removals of delivered messages, done in batches on the thread pool.
    private let remover: GroupCommitQueue<PendingRemoval>

    private struct PendingRemoval: Sendable {
        var path: String
        /// Nil when nobody waits for the removal (`discard`).
        var promise: EventLoopPromise<Void>?
    }
    /// Files of delivered messages, overwritten by new ones.
    private let recycled: RecycledFiles
    /// Also runs other work that must stay off the event loops (DKIM signing).
    let threadPool: NIOThreadPool
    /// How long a delivered file waits for a new message to take it before
    /// it is recycled (`discard`, `recycleDelivered`).
    let handOverWait: TimeAmount
    /// A queued message the journal alone holds gets its file after this
    /// wait at most, so that `relais queue list` (which reads the folder)
    /// shows it (`UnwrittenFiles`).
    let unwrittenWait: TimeAmount

    /// Creates the folders and removes temporary files left by a crash.
    /// Blocking: call at start-up.
    public init(root: String, threadPool: NIOThreadPool, metrics: RelayMetrics? = nil, logger: Logger = Logger(label: "relais.spool"),
                handOverWait: TimeAmount = .milliseconds(50), unwrittenWait: TimeAmount = .milliseconds(500)) throws {
        self.root = root
        self.handOverWait = handOverWait
        self.unwrittenWait = unwrittenWait
        let folder = SpoolFolder(root: root)
        self.folder = folder
        self.threadPool = threadPool
        let recycled = try RecycledFiles(folder: root + "/free")
        self.recycled = recycled
        self.remover = GroupCommitQueue(threadPool: threadPool) { _, batch in
            for removal in batch {
                _ = recycled.recycle(removal.path)
                removal.promise?.succeed()
            }
        }
        let unwritten = self.unwritten
        self.reader = GroupCommitQueue(threadPool: threadPool) { _, batch in
            for read in batch {
                read.promise.completeWith(Result {
                    var entry = try Self.read(read.id, in: folder, unwritten: unwritten)
                    entry.content = entry.content.compacted()
                    return entry
                })
            }
        }
        try DurableFiles.makeFolders([root + "/queue", root + "/corrupt"])
        let (journal, journalUnavailable) = try Self.openJournal(root + "/journal")
        self.journal = journal
        self.journalUnavailable = journalUnavailable
        (restoredFromJournal, removedAfterCrash) = try journal.map { try Self.replay($0, into: folder, recycled: recycled) } ?? (0, 0)
        let deliveriesQueued = self.deliveriesQueued
        self.writer = GroupCommitQueue(threadPool: threadPool) { writer, batch in
            let started = NIODeadline.now()
            var prepared: [(id: String, file: DurableFiles.PendingFile, promise: EventLoopPromise<Void>?)] = []
            var overdueLoop: (any EventLoop)?
            for write in batch {
                switch write.content {
                case .deliveries: deliveriesQueued.withLockedValue { $0 = false }
                case .overdueFiles(let loop): overdueLoop = loop
                case .message, .rewrite, .state: break
                }
                do {
                    if let file = try Self.file(for: write, in: folder) { prepared.append((write.id, file, write.promise)) }
                } catch {
                    write.promise?.fail(error)
                }
            }
            let messages = prepared.map { (id: $0.id, pieces: $0.file.contents) }
            let results: [Result<Void, SystemCallError>]
            if let journal, batch.allSatisfy(\.isJournaled), let outcome = Self.appendToJournal(messages, in: journal) {
                // Durable in the journal alone: each file waits until it is due, and is never written if delivered first.
                results = prepared.map { _ in outcome }
                if case .success = outcome, unwritten.add(messages, at: started), let loop = prepared.first?.promise?.futureResult.eventLoop {
                    overdueLoop = loop
                }
            } else {
                // The files not written yet first (a state record may be for one of them), then the batch's, and a checkpoint for all.
                let unwrittenError = Self.writeUnwritten(unwritten.takeForWriting(), in: folder, recycled: recycled, unwritten: unwritten)
                for index in prepared.indices {
                    if case .namedBeforeFlush = prepared[index].file.naming { prepared[index].file.recycled = recycled.take() }
                }
                results = DurableFiles.write(prepared.map(\.file), flush: {
                    unwrittenError ?? Self.checkpoint(journal, folder: folder.queueFolder, recycled: recycled)
                })
            }
            if let overdueLoop {
                let error = Self.writeUnwritten(unwritten.takeForWriting(before: .now() - unwrittenWait), in: folder,
                                                recycled: recycled, unwritten: unwritten)
                if let error {
                    logger.error("cannot write the file of a queued message the journal holds; tried again",
                                 metadata: ["error": "\(error)"])
                }
                if let due = unwritten.nextDue(after: unwrittenWait) {
                    // One that failed is due already: tried again after a wait.
                    overdueLoop.scheduleTask(deadline: error == nil ? due : .now() + unwrittenWait) {
                        writer.submit(PendingWrite(id: "", content: .overdueFiles(overdueLoop), promise: nil))
                    }
                }
            }
            if !prepared.isEmpty {
                metrics?.spoolFlush(files: prepared.count, seconds: Double((NIODeadline.now() - started).nanoseconds) / 1e9)
            }
            for (write, result) in zip(prepared, results) {
                write.promise?.completeWith(result.mapError { $0 as any Error })
            }
        }
        // Files a crash caught while they were being written anew (and an
        // earlier build's state files being written), before anything else
        // writes: none of them is any message's only copy.
        for path in [folder.queueFolder, folder.stateFolder] {
            for name in DurableFiles.listHidden(path) { unlink(path + "/" + name) }
        }
    }

    /// The journal at `path`, or, when the disk has no room to make it,
    /// none and why.
    private static func openJournal(_ path: String) throws(SystemCallError) -> (SpoolJournal?, SystemCallError?) {
        switch Result(catching: { () throws(SystemCallError) in try SpoolJournal(path: path) }) {
        case .success(let journal):
            return (journal, nil)
        case .failure(let error) where [ENOSPC, EDQUOT].contains(error.errno):
            unlink(path)
            return (nil, error)
        case .failure(let error):
            throw error
        }
    }

    /// Appends new small messages' files (and the deliveries noted) to the
    /// journal and, when it holds a message, makes it durable with one
    /// `fdatasync`; nil when the journal cannot take them now (a checkpoint
    /// is due, or it is full).
    private static func appendToJournal(_ messages: [(id: String, pieces: [ByteBuffer])], in journal: SpoolJournal)
        -> Result<Void, SystemCallError>? {
        switch journal.append(messages) {
        case .success(true): messages.isEmpty ? .success(()) : journal.sync().map { .failure($0) } ?? .success(())
        case .success(false): nil
        case .failure(let error): .failure(error)
        }
    }

    /// A checkpoint: a flush of the filesystem holding `folder`, which
    /// makes every file written so far durable, after which the journal
    /// starts again. Files recycled before it are handed out after it
    /// (`RecycledFiles.flushStarting`). Files the journal alone holds are
    /// to be written before (`writeUnwritten`).
    private static func checkpoint(_ journal: SpoolJournal?, folder: String, recycled: RecycledFiles) -> SystemCallError? {
        let covered = recycled.flushStarting()
        let error: SystemCallError? = {
            if let error = journal?.beginCheckpoint() { return error }
            let error = DurableFiles.flushFilesystem(containing: folder)
            journal?.endCheckpoint(flushed: error == nil)
            return error
        }()
        if error == nil { recycled.flushed(covered) } else { recycled.flushFailed(covered) }
        return error
    }

    /// Writes the files of messages the journal alone holds (`taken` from
    /// `UnwrittenFiles`), each over a recycled file when one is ready, with
    /// no flush: the journal holds them until the next checkpoint. Recycles
    /// those delivered meanwhile. Returns the first failure: a checkpoint
    /// must not follow, the journal still being their only copy.
    private static func writeUnwritten(_ taken: [(id: String, pieces: [ByteBuffer])], in folder: SpoolFolder,
                                       recycled: RecycledFiles, unwritten: UnwrittenFiles) -> SystemCallError? {
        guard !taken.isEmpty else { return nil }
        let files = taken.map {
            DurableFiles.PendingFile(finalPath: folder.path(of: $0.id), contents: $0.pieces, naming: .namedBeforeFlush,
                                     recycled: recycled.take())
        }
        let results = DurableFiles.write(files, flush: { nil })
        let written = Set(zip(taken, results).compactMap { message, result in (try? result.get()).map { message.id } })
        for id in unwritten.finishWriting(taken.map(\.id), written: written) { _ = recycled.recycle(folder.path(of: id)) }
        return results.lazy.compactMap { result -> SystemCallError? in
            if case .failure(let error) = result { error } else { nil }
        }.first
    }

    /// A queued message, read from its file, or from memory when the
    /// journal alone holds it. Blocking.
    func read(_ id: String) throws -> SpoolEntry {
        try Self.read(id, in: folder, unwritten: unwritten)
    }

    private static func read(_ id: String, in folder: SpoolFolder, unwritten: UnwrittenFiles) throws -> SpoolEntry {
        guard let pieces = unwritten.pieces(of: id) else { return try folder.load(id) }
        guard pieces.count == 2 else { throw SpoolFileError("message \(id) is held in \(pieces.count) pieces, not its line and content") }
        return try folder.entry(id, line: pieces[0], content: pieces[1])
    }

    /// Writes back, from the journal, each message with a record, no
    /// record of its delivery, and a file a crash lost or left unfinished,
    /// recycles the file a crash left of each message with a record of its
    /// delivery, then makes a checkpoint; returns how many files were
    /// written back and how many recycled. Blocking: at start-up.
    private static func replay(_ journal: SpoolJournal, into folder: SpoolFolder, recycled: RecycledFiles) throws
        -> (restored: Int, removed: Int) {
        let entries = journal.replay()
        let delivered = Set(entries.filter(\.isDelivery).map(\.id))
        var removed = 0
        for id in delivered where access(folder.path(of: id), F_OK) == 0 {
            if let error = recycled.recycle(folder.path(of: id)) { throw error }
            removed += 1
        }
        var restored = 0
        for entry in entries where !entry.isDelivery && !delivered.contains(entry.id) && (try? folder.load(entry.id)) == nil {
            try DurableFiles.writeFile(folder.path(of: entry.id), [entry.bytes])
            restored += 1
        }
        if let error = checkpoint(journal, folder: folder.queueFolder, recycled: recycled) { throw error }
        return (restored, removed)
    }

    /// A checkpoint when the relay stops, once nothing writes any more,
    /// after the files the journal alone holds are written: a start then
    /// has nothing to replay. Blocking.
    func checkpointAtStop() -> SystemCallError? {
        Self.writeUnwritten(unwritten.takeForWriting(), in: folder, recycled: recycled, unwritten: unwritten)
            ?? Self.checkpoint(journal, folder: queueFolder, recycled: recycled)
    }

    /// Has the deliveries noted in the journal written, before files of
    /// delivered messages are removed, or (`afterWaitOn`) a short while
    /// after a message the journal alone held was delivered: a crash then
    /// finds them and does not bring those messages back. New messages'
    /// batches write them too, so a relay under load seldom needs a batch
    /// of its own.
    private func writeDeliveries(afterWaitOn eventLoop: (any EventLoop)? = nil) {
        guard journal?.deliveriesWaiting == true,
              deliveriesQueued.withLockedValue({ queued in defer { queued = true }; return !queued })
        else { return }
        let write: @Sendable () -> Void = { [writer] in writer.submit(PendingWrite(id: "", content: .deliveries, promise: nil)) }
        if let eventLoop { eventLoop.scheduleTask(in: handOverWait, write) } else { write() }
    }

    /// The file a write makes, its bytes encoded here on the thread pool;
    /// none for the journal's deliveries and the overdue files.
    private static func file(for write: PendingWrite, in folder: SpoolFolder) throws -> DurableFiles.PendingFile? {
        let path = folder.path(of: write.id)
        switch write.content {
        case .message(let envelope, let content):
            return DurableFiles.PendingFile(finalPath: path, contents: [try envelope.encodedLine(seal: SpoolSeal(of: content)), content],
                                            naming: .namedBeforeFlush)
        case .rewrite(let envelope, let content, let state):
            var contents = [try envelope.encodedLine(seal: SpoolSeal(of: content)), content]
            if let state { contents.append(try StateRecord.encode(state, of: write.id)) }
            return DurableFiles.PendingFile(finalPath: path, contents: contents,
                                            naming: .replacingWhenDurable(temporaryPath: folder.temporaryPath(of: write.id)))
        case .state(let state):
            return DurableFiles.PendingFile(finalPath: path, contents: [try StateRecord.encode(state, of: write.id)], naming: .appended)
        case .deliveries, .overdueFiles:
            return nil
        }
    }

    /// Stores the message; the future succeeds once its file is durable,
    /// and fails with a `SystemCallError` otherwise.
    public func store(_ envelope: Envelope, content: ByteBuffer, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        submit(.message(envelope, content), of: envelope.id, on: eventLoop)
    }

    /// Saves a queued message's delivery state: a record appended to its
    /// file (`StateRecord`), sharing the flush of the messages and states
    /// written meanwhile.
    func saveState(_ state: MessageState, of id: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        submit(.state(state), of: id, on: eventLoop)
    }

    /// Writes a queued message's file anew with its state as the only
    /// record (or none): the records of many attempts folded into one, or a
    /// file of an earlier build brought to this one's layout. The new file
    /// replaces the old one once durable, and only if that is still queued:
    /// a message removed meanwhile (delivered, deleted) stays removed, and
    /// the future fails.
    func rewrite(_ envelope: Envelope, content: ByteBuffer, state: MessageState?, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        submit(.rewrite(envelope, content, state), of: envelope.id, on: eventLoop)
    }

    private func submit(_ content: PendingWrite.Content, of id: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        writer.submit(PendingWrite(id: id, content: content, promise: promise))
        return promise.futureResult
    }

    /// Reads a queued message's file (`SpoolFolder.load`) on the thread
    /// pool, together with the reads asked for meanwhile. The content comes
    /// in a buffer of its own (`ByteBuffer.compacted`), not sharing the
    /// whole file's, since the relay queue holds it through an attempt.
    func load(_ id: String, on eventLoop: any EventLoop) -> EventLoopFuture<SpoolEntry> {
        let promise = eventLoop.makePromise(of: SpoolEntry.self)
        reader.submit(PendingRead(id: id, promise: promise))
        return promise.futureResult
    }

    public func path(of id: String) -> String { folder.path(of: id) }

    /// Forgets a message whose delivery is durable elsewhere; its file is
    /// kept to hold a later message (`RecycledFiles`), and one the journal
    /// alone held is only forgotten in memory. Blocking. If the move
    /// is lost in a crash, the message is delivered again: at least once,
    /// never zero times.
    func remove(_ id: String) -> SystemCallError? {
        guard leftWithoutFile(id) else { return recycled.recycle(path(of: id)) }
        writeDeliveries()
        return nil
    }

    /// Notes in the journal that the message left the queue; true when it
    /// has no file to remove (`UnwrittenFiles.drop`).
    private func leftWithoutFile(_ id: String) -> Bool {
        journal?.noteDelivered(id)
        return unwritten.drop(id)
    }

    /// Forgets a delivered message, with the removals of other messages in
    /// one pass on the thread pool; at once when it had no file.
    func forget(_ id: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let withoutFile = leftWithoutFile(id)
        writeDeliveries()
        if withoutFile { return eventLoop.makeSucceededVoidFuture() }
        let promise = eventLoop.makePromise(of: Void.self)
        remover.submit(PendingRemoval(path: path(of: id), promise: promise))
        return promise.futureResult
    }

    /// Removals submitted and not yet begun.
    var removalsWaiting: Int { remover.waiting }

    /// Removals that may wait undone before `discard` makes its caller
    /// wait; as many delivered files may wait to be handed over.
    static let removalsAhead = 256

    /// `forget` for a caller that need not wait: nothing wakes an event loop
    /// when the removal is done. A message the journal alone held has no
    /// file to remove: its delivery record is written within
    /// `handOverWait`, unless a batch of new messages takes it first. A
    /// file is first offered to the next message written
    /// (`RecycledFiles.handOver`), which saves moving it out of `queue/`
    /// and back and a thread woken to do so; what no message took within
    /// `handOverWait` is recycled. With `removalsAhead` files
    /// already offered, it is removed on the thread pool. With
    /// `removalsAhead` removals already waiting it returns the future to
    /// wait for instead, so removal keeps pace with delivery and a crash
    /// delivers only a few hundred messages twice (a removal lost in a
    /// crash means the message is delivered again, as with `forget`).
    func discard(_ id: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void>? {
        guard removalsWaiting < Self.removalsAhead else { return forget(id, on: eventLoop) }
        if leftWithoutFile(id) {
            writeDeliveries(afterWaitOn: eventLoop)
            return nil
        }
        let path = path(of: id)
        switch recycled.handOver(path, limit: Self.removalsAhead) {
        case .firstWaiting:
            recycleDelivered(afterWaitOn: eventLoop)
        case .waiting:
            break
        case .refused:
            recycleLater([path])
        }
        return nil
    }

    /// After `handOverWait`, recycles the delivered files that no message
    /// took, as many as the removals waiting leave room for
    /// (`removalsAhead`); the rest wait another `handOverWait`.
    private func recycleDelivered(afterWaitOn eventLoop: any EventLoop) {
        eventLoop.scheduleTask(in: handOverWait) { [self] in
            let (paths, more) = recycled.takeDelivered(upTo: max(0, Self.removalsAhead - removalsWaiting))
            recycleLater(paths)
            if more { recycleDelivered(afterWaitOn: eventLoop) }
        }
    }

    /// Recycles every delivered file that no message took: at shutdown, so
    /// a restart delivers none of them again. With the thread pool stopped,
    /// the caller's thread does it.
    func recycleDelivered() {
        recycleLater(recycled.takeDelivered().paths)
    }

    /// Moves the files to `free/` on the thread pool, with nobody waiting.
    private func recycleLater(_ paths: [String]) {
        if !paths.isEmpty { writeDeliveries() }
        for path in paths { remover.submit(PendingRemoval(path: path, promise: nil)) }
    }

    /// Moves a queued file that `error` (from reading it) shows holds no
    /// whole message to the corrupt folder, or recycles it when it holds
    /// another message's envelope (`MisnamedSpoolFile`); logs either way.
    /// True when it was moved: the message has left the queue. Blocking.
    func setAsideIfCorrupt(_ id: String, after error: any Error, logger: Logger) -> Bool {
        guard !(error is SystemCallError) else {
            logger.error("cannot read queued message", metadata: ["id": "\(id)", "error": "\(error)"])
            return false
        }
        if error is MisnamedSpoolFile {
            logger.warning("queued file holds another message's envelope, left by a crash: nothing to deliver; recycled",
                           metadata: ["id": "\(id)", "error": "\(error)"])
            if let recycleError = remove(id) {
                logger.error("cannot recycle queued file", metadata: ["id": "\(id)", "error": "\(recycleError)"])
            }
            return true
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
