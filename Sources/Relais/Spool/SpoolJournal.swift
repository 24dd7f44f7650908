import CSystemShims
import NIOConcurrencyHelpers
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// The spool's write-ahead log: new messages' file bytes appended to one
/// preallocated file, `journal`, and made durable by one `fdatasync` of it
/// instead of a flush of the whole filesystem (`syncfs`). Overwriting
/// blocks the file already has changes no metadata, so the flush before
/// the 250 writes those few contiguous blocks and nothing else: no inode,
/// no folder block, none of the other files.
///
/// The messages' own files in `queue/` are written only if they stay
/// queued (`UnwrittenFiles`): a message delivered first never gets one.
/// Files become durable at the next checkpoint, a `syncfs` that every
/// `recordsPerCheckpoint` journaled messages (or a full journal, or any
/// batch that needs a flush of its own) brings, after the files of every
/// message still queued are written. After a checkpoint the journal starts
/// again from its beginning (`endCheckpoint`), with a new use number, so
/// records of an earlier use are never read as current ones.
///
/// After a crash (`replay`), every message with a record of the current use,
/// no record of its delivery (`noteDelivered`), and a file in `queue/` that
/// is missing or not whole is written back, and the file a crash left of a
/// message with a delivery record is recycled (`Spool.replay`). A message
/// delivered since the last checkpoint whose delivery record the crash lost
/// may thus be delivered again (at least once, never zero times), as a
/// removal lost in a crash already could.
///
/// A record: the magic `RLJ1`, the use number, the payload's length and
/// the CRC-32C of those and the payload, then the payload: the id's length
/// in one byte, the id, and the spool file's bytes. Used by the spool's
/// writer, one batch at a time. Blocking.
final class SpoolJournal: Sendable {
    let path: String
    /// How many bytes the file holds (preallocated).
    let capacity: Int
    /// Journaled messages between two checkpoints at most.
    let recordsPerCheckpoint: Int
    private let fd: Int32
    private let position: NIOLockedValueBox<Position>

    private struct Position {
        var offset = 0
        var use: UInt64 = 1
        var records = 0
        /// Messages with a record of this use and none of their delivery.
        var journaled: Set<String> = []
        /// Of those, the ones delivered since the last append.
        var delivered: [String] = []
        /// The file may start with a record (of this use or, before the
        /// first checkpoint, of an earlier run): a checkpoint unmarks it.
        var startsWithRecord = true
    }

    /// A record: a message's file, or (no bytes) word that the message
    /// was delivered, so that a crash does not bring it back.
    struct Entry: Equatable {
        var id: String
        var bytes: ByteBuffer

        var isDelivery: Bool { bytes.readableBytes == 0 }
    }

    private static let magic: UInt32 = 0x524C_4A31
    private static let headerSize = 4 + 8 + 4 + 4

    /// Opens the journal at `path`, made and filled with zeros the first
    /// time (so later writes change no metadata). Blocking.
    /// Throws when it cannot be made (`ENOSPC` on a disk too small).
    init(path: String, capacity: Int = 16 << 20, recordsPerCheckpoint: Int = 256) throws(SystemCallError) {
        self.path = path
        self.capacity = capacity
        self.recordsPerCheckpoint = recordsPerCheckpoint
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemCallError("open", path, errno: errno) }
        self.fd = fd
        position = NIOLockedValueBox(Position())
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw SystemCallError("fstat", path, errno: errno) }
        if Int(status.st_size) < capacity {
            let zeros = [UInt8](repeating: 0, count: 1 << 20)
            var offset = Int(status.st_size)
            while offset < capacity {
                let count = pwrite(fd, zeros, min(zeros.count, capacity - offset), off_t(offset))
                guard count > 0 else { throw SystemCallError("pwrite", path, errno: errno) }
                offset += count
            }
            guard fsync(fd) == 0 else { throw SystemCallError("fsync", path, errno: errno) }
            if let error = DurableFiles.syncFolder(DurableFiles.parentFolder(of: path)) { throw error }
        }
    }

    deinit { close(fd) }

    /// The records of the current use, in order: those a crash may have
    /// left without their file. Reading stops at the first record that is
    /// not whole (a write the crash cut short: nothing after it was
    /// acknowledged). Later records get a higher use number.
    func replay() -> [Entry] {
        var entries: [Entry] = []
        var offset = 0
        var use: UInt64?
        while offset + Self.headerSize <= capacity {
            var header = ByteBufferAllocator().buffer(capacity: Self.headerSize)
            guard read(into: &header, count: Self.headerSize, at: offset),
                  header.readInteger(endianness: .little, as: UInt32.self) == Self.magic,
                  let recordUse = header.readInteger(endianness: .little, as: UInt64.self),
                  use == nil || recordUse == use,
                  let length = header.readInteger(endianness: .little, as: UInt32.self).map(Int.init),
                  let crc = header.readInteger(endianness: .little, as: UInt32.self),
                  offset + Self.headerSize + length <= capacity
            else { break }
            var payload = ByteBufferAllocator().buffer(capacity: length)
            guard read(into: &payload, count: length, at: offset + Self.headerSize),
                  Self.checksum(use: recordUse, payload: [payload]) == crc,
                  let idLength = payload.readInteger(as: UInt8.self),
                  let id = payload.readString(length: Int(idLength))
            else { break }
            use = recordUse
            entries.append(Entry(id: id, bytes: payload))
            offset += Self.headerSize + length
        }
        position.withLockedValue { $0.use = max($0.use, (use ?? 0) + 1) }
        return entries
    }

    /// Notes that a message left the queue (delivered, bounced, deleted):
    /// if it has a record, a record of its delivery goes with the next
    /// append.
    func noteDelivered(_ id: String) {
        position.withLockedValue { position in
            if position.journaled.remove(id) != nil { position.delivered.append(id) }
        }
    }

    /// Deliveries are noted and not yet written.
    var deliveriesWaiting: Bool { position.withLockedValue { !$0.delivered.isEmpty } }

    /// Appends the records of `entries` (each a message's id and the pieces
    /// of its file), and of the deliveries noted since the last append, in
    /// one write; or returns false when they do not fit or a checkpoint is
    /// due: the caller makes the batch a checkpoint instead
    /// (`beginCheckpoint`, `endCheckpoint`). Not durable until `sync`.
    func append(_ entries: [(id: String, pieces: [ByteBuffer])]) -> Result<Bool, SystemCallError> {
        let (offset, use, delivered, due) = position.withLockedValue {
            ($0.offset, $0.use, $0.delivered, $0.records + entries.count > recordsPerCheckpoint)
        }
        guard !due else { return .success(false) }
        guard !entries.isEmpty || !delivered.isEmpty else { return .success(true) }
        var pieces: [ByteBuffer] = []
        var length = 0
        for entry in delivered.map({ (id: $0, pieces: [ByteBuffer]()) }) + entries {
            var prefix = ByteBufferAllocator().buffer(capacity: 1 + entry.id.utf8.count)
            prefix.writeInteger(UInt8(entry.id.utf8.count))
            prefix.writeString(entry.id)
            let payload = [prefix] + entry.pieces
            let payloadLength = payload.reduce(0) { $0 + $1.readableBytes }
            var header = ByteBufferAllocator().buffer(capacity: Self.headerSize)
            header.writeInteger(Self.magic, endianness: .little)
            header.writeInteger(use, endianness: .little)
            header.writeInteger(UInt32(payloadLength), endianness: .little)
            header.writeInteger(Self.checksum(use: use, payload: payload), endianness: .little)
            pieces.append(header)
            pieces.append(contentsOf: payload)
            length += Self.headerSize + payloadLength
        }
        guard offset + length <= capacity else { return .success(false) }
        do {
            try DurableFiles.writeAll(fd, path, pieces, at: offset)
        } catch {
            return .failure(error)
        }
        position.withLockedValue {
            $0.offset = offset + length
            $0.startsWithRecord = true
            $0.records += entries.count
            $0.delivered.removeFirst(delivered.count)
            $0.journaled.formUnion(entries.map(\.id))
        }
        return .success(true)
    }

    /// Makes the records appended so far durable.
    func sync() -> SystemCallError? {
        fdatasync(fd) == 0 ? nil : SystemCallError("fdatasync", path, errno: errno)
    }

    /// Called before a filesystem flush that is to be a checkpoint: the
    /// first record is unmarked, so that once the flush has made every
    /// journaled message's file durable, a crash finds no record of this
    /// use to replay (its messages' files may since have been delivered and
    /// recycled). `endCheckpoint` marks it again if the flush failed.
    func beginCheckpoint() -> SystemCallError? {
        guard position.withLockedValue({ $0.startsWithRecord }) else { return nil }
        return pwrite(fd, [UInt8](repeating: 0, count: 4), 4, 0) == 4 ? nil : SystemCallError("pwrite", path, errno: errno)
    }

    /// After the checkpoint's flush: the journal starts again from its
    /// beginning, with the next use number; after a failed flush the first
    /// record is marked again, its messages still owed to the journal.
    func endCheckpoint(flushed: Bool) {
        guard flushed else {
            var magic = Self.magic.littleEndian
            if position.withLockedValue({ $0.startsWithRecord }) { _ = pwrite(fd, &magic, 4, 0) }
            return
        }
        position.withLockedValue { $0 = Position(use: $0.use + 1, startsWithRecord: false) }
    }

    private static func checksum(use: UInt64, payload: [ByteBuffer]) -> UInt32 {
        var fields = ByteBufferAllocator().buffer(capacity: 12)
        fields.writeInteger(use, endianness: .little)
        fields.writeInteger(UInt32(payload.reduce(0) { $0 + $1.readableBytes }), endianness: .little)
        return ([fields] + payload).reduce(0) { crc, piece in
            piece.withUnsafeReadableBytes { relais_crc32c(crc, $0.baseAddress, $0.count) }
        }
    }

    /// Reads `count` bytes at `offset`; false when the file ends before.
    private func read(into buffer: inout ByteBuffer, count: Int, at offset: Int) -> Bool {
        while buffer.readableBytes < count {
            let done = buffer.readableBytes
            var result = 0
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count - done) { pointer in
                result = pread(fd, pointer.baseAddress, count - done, off_t(offset + done))
                return max(0, result)
            }
            if result == 0 || (result < 0 && errno != EINTR) { return false }
        }
        return true
    }
}
