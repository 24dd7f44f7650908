import CSystemShims
import NIOCore

/// The size and CRC-32C of a spool file's content, written in its envelope
/// line. A message's file takes its queue name before the flush that makes
/// it durable (one flush, not two, before the 250), so after a crash a file
/// in `queue/` may hold a write that never finished: a recycled file's old
/// bytes, or a new file cut short. Such a file holds no message still owed
/// (the one being written was never acknowledged; a recycled file's old
/// one was delivered); the seal tells it from a whole one, which is read
/// back as it was written.
/// A maildir file waiting in `tmp/` carries one in its name (`Maildir`).
public struct SpoolSeal: Sendable, Equatable {
    public var contentSize: Int
    public var contentCRC32C: UInt32

    enum CodingKeys: String, CodingKey {
        case contentSize, contentCRC32C
    }

    init(contentSize: Int, contentCRC32C: UInt32) {
        self.contentSize = contentSize
        self.contentCRC32C = contentCRC32C
    }

    /// The seal of `content`.
    init(of content: ByteBuffer) {
        contentSize = content.readableBytes
        contentCRC32C = content.withUnsafeReadableBytes { relais_crc32c(0, $0.baseAddress, $0.count) }
    }

    /// Throws unless `content` is what the seal was made of.
    func check(_ content: ByteBuffer) throws {
        try check(size: content.readableBytes)
        guard SpoolSeal(of: content).contentCRC32C == contentCRC32C else {
            throw SpoolFileError("spool file is damaged: its content does not match its CRC-32C")
        }
    }

    /// Throws unless the content is as long as when the seal was made: all
    /// that can be checked without reading it.
    func check(size: Int) throws {
        guard size == contentSize else { throw incomplete(size) }
    }

    /// Throws unless at least the content follows the envelope line: the
    /// check of a file with state records after it (`StateRecord`).
    func check(sizeWithTail size: Int) throws {
        guard size >= contentSize else { throw incomplete(size) }
    }

    private func incomplete(_ size: Int) -> SpoolFileError {
        SpoolFileError("spool file is incomplete: \(size) bytes of content, \(contentSize) written")
    }

    /// Splits what follows a file's envelope line into the content the seal
    /// was made of, checked, and the state records appended after it (`StateRecord`).
    func split(_ rest: ByteBuffer) throws -> (content: ByteBuffer, tail: ByteBuffer) {
        var rest = rest
        guard let content = rest.readSlice(length: contentSize) else { throw incomplete(rest.readableBytes) }
        try check(content)
        return (content, rest)
    }
}
