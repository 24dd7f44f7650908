import Foundation
import CSystemShims
import NIOCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Safe file writing for the spool and the maildir: each file is written under
/// a temporary name, made durable, renamed into place and its folder synced,
/// so that a crash leaves either the whole file or nothing. Files are handled
/// in batches that share one filesystem flush (group commit).
/// Blocking: call only from a thread pool, never from an event loop.
enum DurableFiles {
    /// One file to create, named `finalPath` in the end.
    struct PendingFile {
        /// How a file comes to its final name.
        enum Naming {
            /// Written under this name and, once durable, swapped with the
            /// file at the final name, which must still be there (one
            /// removed meanwhile stays removed); the old file is unlinked
            /// and the folder synced: durable under its final name when
            /// `write` returns.
            case replacingWhenDurable(temporaryPath: String)
            /// Named before the flush (a recycled file is moved there at
            /// once), so one flush makes content and name durable. Only for
            /// files whose reader tells a whole file from one a crash
            /// interrupted (`SpoolSeal`), never for one that replaces another.
            case namedBeforeFlush
            /// Written under this name, whose seal tells a whole file from
            /// one a crash cut short (`Maildir`), and renamed once durable,
            /// but the folder not synced: one flush, and a rename a crash
            /// undid is redone at the next start.
            case durableUnderTemporaryName(String)
            /// Added to the end of the existing file, which keeps its name:
            /// records whose reader tells a whole one from one a crash cut
            /// short (`StateRecord`). A failed write is cut off again.
            case appended
        }

        var finalPath: String
        var contents: [ByteBuffer]
        var naming: Naming
        /// A spool file to overwrite instead of creating one (`RecycledFiles`).
        var recycled: String?

        var temporaryPath: String? {
            switch naming {
            case .replacingWhenDurable(let path), .durableUnderTemporaryName(let path): path
            case .namedBeforeFlush, .appended: nil
            }
        }
        /// Where the content is written.
        var writtenPath: String { recycled ?? temporaryPath ?? finalPath }
        /// Where the file is while the flush runs.
        var flushedPath: String { temporaryPath ?? finalPath }
    }

    /// Writes the batch; the result for each file is in the same order.
    /// A file counts as written only when its content and its name are durable.
    /// `flush` makes them so once they are written (default: a flush of
    /// their filesystem, `syncfs`).
    ///
    /// `committed` is called once the flush has made the files durable
    /// (true for each, in order; not at all when none was written or the
    /// flush failed) and before any is moved to its final name. It returns
    /// the files the caller now counts as done under their temporary name
    /// (`durableUnderTemporaryName`, whose seal lets a start finish the
    /// move). If the move of one of those fails, it keeps that name instead
    /// of being removed, and its failure is the caller's to finish.
    static func write(_ files: [PendingFile], committed: ([Bool]) -> Set<Int> = { _ in [] },
                      flush: (() -> SystemCallError?)? = nil) -> [Result<Void, SystemCallError>] {
        var results = files.map { file in
            Result { () throws(SystemCallError) in
                if case .appended = file.naming { return try append(file.finalPath, file.contents) }
                var file = file
                do throws(SystemCallError) {
                    try writeFile(file.writtenPath, file.contents, overwriting: file.recycled != nil)
                } catch where file.recycled != nil && error.errno == ENOENT {
                    // A recycled file removed by hand meanwhile: a new one instead.
                    file.recycled = nil
                    try writeFile(file.writtenPath, file.contents)
                }
                if file.writtenPath != file.flushedPath, rename(file.writtenPath, file.flushedPath) != 0 {
                    let error = SystemCallError("rename", file.flushedPath, errno: errno)
                    unlink(file.writtenPath)
                    throw error
                }
            }
        }
        let written = results.indices.filter { if case .success = results[$0] { true } else { false } }
        guard let first = written.first else { return results }
        if let error = flush.map({ $0() }) ?? flushFilesystem(containing: files[first].flushedPath) {
            for index in written {
                results[index] = .failure(error)
                if case .appended = files[index].naming { continue }  // the file held a message before
                unlink(files[index].flushedPath)
            }
            return results
        }
        let kept = committed(results.map { if case .success = $0 { true } else { false } })
        var folders: Set<String> = []
        for index in written {
            guard let temporaryPath = files[index].temporaryPath else { continue }
            let replacing = if case .replacingWhenDurable = files[index].naming { true } else { false }
            let moved = replacing ? relais_exchange(temporaryPath, files[index].finalPath) : rename(temporaryPath, files[index].finalPath)
            if moved != 0 {
                results[index] = .failure(SystemCallError(replacing ? "renameat2" : "rename", files[index].finalPath, errno: errno))
            } else if replacing {
                folders.insert(parentFolder(of: files[index].finalPath))
            }
            // The new file, or the old one swapped there; not a file the caller committed.
            if replacing || (moved != 0 && !kept.contains(index)) { unlink(temporaryPath) }
        }
        for folder in folders {
            guard let error = syncFolder(folder) else { continue }
            for index in written where parentFolder(of: files[index].finalPath) == folder {
                if case .replacingWhenDurable = files[index].naming, case .success = results[index] { results[index] = .failure(error) }
            }
        }
        return results
    }

    /// Replaces the file at `path` atomically (temporary file, rename),
    /// without syncing: for state that may lag after a crash.
    static func replaceUnsynced(_ path: String, with data: Data) throws(SystemCallError) {
        let temporary = parentFolder(of: path) + "/." + (path.split(separator: "/").last.map(String.init) ?? "file")
        try writeFile(temporary, [ByteBuffer(bytes: data)])
        guard rename(temporary, path) == 0 else {
            let error = SystemCallError("rename", temporary, errno: errno)
            unlink(temporary)
            throw error
        }
    }

    /// Writes `contents` to a new file at `path`, or (`overwriting`) over
    /// the existing one there, then cut to the new length when it was longer.
    static func writeFile(_ path: String, _ contents: [ByteBuffer], overwriting: Bool = false) throws(SystemCallError) {
        let fd = overwriting ? open(path, O_WRONLY | O_CLOEXEC)
            : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemCallError("open", path, errno: errno) }
        defer { close(fd) }
        // A failed file is removed: it holds no whole message.
        func removed(after call: String) -> SystemCallError {
            let error = SystemCallError(call, path, errno: errno)
            unlink(path)
            return error
        }
        let length: Int
        do {
            length = try writeAll(fd, path, contents)
        } catch {
            unlink(path)
            throw error
        }
        guard overwriting else { return }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw removed(after: "fstat") }
        if Int(status.st_size) > length, ftruncate(fd, off_t(length)) != 0 { throw removed(after: "ftruncate") }
    }

    /// Writes all of `contents` at the file's offset, or at `position`;
    /// returns how many bytes.
    @discardableResult
    static func writeAll(_ fd: Int32, _ path: String, _ contents: [ByteBuffer], at position: Int? = nil) throws(SystemCallError) -> Int {
        let length = contents.reduce(0) { $0 + $1.readableBytes }
        var written = 0
        while written < length {
            let count = write(fd, contents, from: written, at: position.map { $0 + written })
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemCallError("write", path, errno: errno)
            }
            written += count
        }
        return length
    }

    /// Adds `contents` to the end of the file at `path`; a write that fails
    /// part way is cut off, so the file ends as it did.
    private static func append(_ path: String, _ contents: [ByteBuffer]) throws(SystemCallError) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw SystemCallError("open", path, errno: errno) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw SystemCallError("fstat", path, errno: errno) }
        do {
            try writeAll(fd, path, contents)
        } catch {
            ftruncate(fd, status.st_size)
            throw error
        }
    }

    /// One `writev` (`pwritev` at `position`) of what follows the first
    /// `offset` bytes of `contents`.
    private static func write(_ fd: Int32, _ contents: [ByteBuffer], from offset: Int, at position: Int?) -> Int {
        var rest = contents[...]
        var skipped = offset
        while let first = rest.first, skipped >= first.readableBytes {
            skipped -= first.readableBytes
            rest = rest.dropFirst()
        }
        return withReadablePointers(rest) { pointers in
            var vectors = pointers.enumerated().map { index, pointer in
                let start = index == 0 ? skipped : 0
                return iovec(iov_base: UnsafeMutableRawPointer(mutating: pointer.baseAddress.map { $0 + start }),
                             iov_len: pointer.count - start)
            }
            let count = Int32(min(vectors.count, 1024))  // IOV_MAX on Linux
            if let position { return Glibc.pwritev(fd, &vectors, count, off_t(position)) }
            return Glibc.writev(fd, &vectors, count)
        }
    }

    /// Calls `body` with the readable bytes of every buffer at once.
    private static func withReadablePointers<Result>(_ buffers: ArraySlice<ByteBuffer>, _ collected: [UnsafeRawBufferPointer] = [],
                                                     _ body: ([UnsafeRawBufferPointer]) -> Result) -> Result {
        guard let first = buffers.first else { return body(collected) }
        return first.withUnsafeReadableBytes { withReadablePointers(buffers.dropFirst(), collected + [$0], body) }
    }

    static func flushFilesystem(containing path: String) -> SystemCallError? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return SystemCallError("open", path, errno: errno) }
        defer { close(fd) }
        return relais_syncfs(fd) == 0 ? nil : SystemCallError("syncfs", path, errno: errno)
    }

    static func syncFolder(_ path: String) -> SystemCallError? {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return SystemCallError("open", path, errno: errno) }
        defer { close(fd) }
        return fsync(fd) == 0 ? nil : SystemCallError("fsync", path, errno: errno)
    }

    static func parentFolder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }

    static func makeFolders(_ paths: [String]) throws(SystemCallError) {
        for path in paths {
            var built = path.hasPrefix("/") ? "" : "."
            for component in path.split(separator: "/") {
                built += "/" + component
                if mkdir(built, 0o700) != 0 && errno != EEXIST {
                    throw SystemCallError("mkdir", built, errno: errno)
                }
            }
        }
    }

    static func readFile(_ path: String) throws(SystemCallError) -> ByteBuffer {
        let (fd, size) = try openForReading(path)
        defer { close(fd) }
        // The file's size and a byte more: the read that finds the end needs no larger buffer.
        var buffer = ByteBufferAllocator().buffer(capacity: size + 1)
        try read(fd, path, into: &buffer, chunk: 64 * 1024, until: nil)
        return buffer
    }

    /// The start of the file up to and including the first `byte` (all of
    /// it when there is none), the file's size, and what follows the offset
    /// that `tailStart` finds from those two (empty when it finds none):
    /// an envelope line and the state records after the message, without
    /// the message.
    static func readHeadAndTail(_ path: String, through byte: UInt8, tailStart: (ByteBuffer, Int) throws -> Int?) throws
        -> (head: ByteBuffer, size: Int, tail: ByteBuffer) {
        let (fd, size) = try openForReading(path)
        defer { close(fd) }
        // A head is usually short: it starts with a small read.
        var head = ByteBufferAllocator().buffer(capacity: 8 * 1024)
        try read(fd, path, into: &head, chunk: 8 * 1024, until: byte)
        guard let start = try tailStart(head, size), start < size else { return (head, size, ByteBuffer()) }
        if size <= head.readableBytes {
            return (head, size, head.getSlice(at: head.readerIndex + start, length: size - start) ?? ByteBuffer())
        }
        guard lseek(fd, off_t(start), SEEK_SET) >= 0 else { throw SystemCallError("lseek", path, errno: errno) }
        var tail = ByteBufferAllocator().buffer(capacity: size - start + 1)
        try read(fd, path, into: &tail, chunk: 8 * 1024, until: nil)
        return (head, size, tail)
    }

    /// The file opened for reading, and its size.
    private static func openForReading(_ path: String) throws(SystemCallError) -> (fd: Int32, size: Int) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemCallError("open", path, errno: errno) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            let error = SystemCallError("fstat", path, errno: errno)
            close(fd)
            throw error
        }
        return (fd, Int(status.st_size))
    }

    /// Reads to the end of the file, or (with `byte`) until a read brought `byte`.
    private static func read(_ fd: Int32, _ path: String, into buffer: inout ByteBuffer, chunk: Int, until byte: UInt8?)
        throws(SystemCallError) {
        var searched = 0
        while true {
            if buffer.writableBytes == 0 {
                buffer.reserveCapacity(minimumWritableBytes: buffer.readableBytes < 64 * 1024 ? chunk : 64 * 1024)
            }
            let count = buffer.withUnsafeMutableWritableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemCallError("read", path, errno: errno)
            }
            if count == 0 { return }
            buffer.moveWriterIndex(forwardBy: count)
            if let byte, buffer.readableBytesView.dropFirst(searched).contains(byte) { return }
            searched = buffer.readableBytes
        }
    }

    /// The names in the folder that do not start with a dot, sorted.
    static func listFolder(_ path: String) throws(SystemCallError) -> [String] {
        try names(in: path).filter { !$0.hasPrefix(".") }.sorted()
    }

    /// The names in the folder that start with a dot (temporary files),
    /// but for `.` and `..`; none when it cannot be read.
    static func listHidden(_ path: String) -> [String] {
        ((try? names(in: path)) ?? []).filter { $0.hasPrefix(".") && $0 != "." && $0 != ".." }
    }

    private static func names(in path: String) throws(SystemCallError) -> [String] {
        guard let dir = opendir(path) else { throw SystemCallError("opendir", path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            names.append(withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            })
        }
        return names
    }
}
