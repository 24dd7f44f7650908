import NIOCore

/// What a message's content costs while it is held in memory, and how to
/// hold it at that cost: the relay queue counts held content against
/// `queue.memory`, and a buffer sized for something else (the intake's,
/// before the message's size is known; a whole spool file's) holds more.
extension ByteBuffer {
    /// The memory `byteCount` bytes take in a buffer of their own: NIO
    /// allocates a buffer's storage in powers of two.
    static func memory(holding byteCount: Int) -> Int {
        byteCount <= 1 ? byteCount : 1 << (Int.bitWidth - (byteCount - 1).leadingZeroBitCount)
    }

    /// These bytes in a buffer no larger than `memory(holding:)` of them:
    /// a copy when this one's storage is larger, else this one.
    func compacted() -> ByteBuffer {
        storageCapacity > Self.memory(holding: readableBytes) ? ByteBufferAllocator().buffer(buffer: self) : self
    }
}
