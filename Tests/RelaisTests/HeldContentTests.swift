import Foundation
import NIOCore
@testable import Relais
import Testing

/// What the relay queue counts against `queue.memory` for a message it
/// holds is the memory the message takes, not only its length.
struct HeldContentTests {
    @Test func heldContentIsCountedAsTheBufferItTakes() {
        #expect(ByteBuffer.memory(holding: 0) == 0)
        #expect(ByteBuffer.memory(holding: 1) == 1)
        #expect(ByteBuffer.memory(holding: 2048) == 2048)
        #expect(ByteBuffer.memory(holding: 2049) == 4096)
        #expect(ByteBuffer.memory(holding: 100 * 1024) == 128 * 1024)
        var buffer = ByteBufferAllocator().buffer(capacity: 3000)
        buffer.writeRepeatingByte(UInt8(ascii: "x"), count: 3000)
        #expect(buffer.storageCapacity == ByteBuffer.memory(holding: 3000))
    }

    @Test func aSmallMessageInTheIntakesLargeBufferIsMovedToOneItsSize() {
        var intake = ByteBufferAllocator().buffer(capacity: 17 * 1024)
        intake.writeString("Received: from client\r\n")
        intake.writeRepeatingByte(UInt8(ascii: "x"), count: 2500)
        let kept = intake.compacted()
        #expect(intake.storageCapacity == 32 * 1024)
        #expect(kept.storageCapacity == 4096)
        #expect(kept == intake)
    }

    @Test func aMessageReadBackKeepsOnlyItsContentOfTheFile() {
        var file = ByteBufferAllocator().buffer(capacity: 8192)
        file.writeRepeatingByte(UInt8(ascii: "e"), count: 600)  // the envelope line
        file.writeRepeatingByte(UInt8(ascii: "c"), count: 4000)
        file.writeRepeatingByte(UInt8(ascii: "s"), count: 2000)  // state records
        let content = file.getSlice(at: 600, length: 4000) ?? ByteBuffer()
        let kept = content.compacted()
        #expect(kept.storageCapacity == 4096 && kept == content)
    }

    /// The spool's read hands back content in a buffer its own size, not
    /// the larger one the whole file was read into.
    @Test func theSpoolReadsContentBackIntoABufferItsSize() async throws {
        try await withTemporarySpool(threads: 1) { spool, loop, _ in
            var content = ByteBufferAllocator().buffer(capacity: 4000)
            content.writeRepeatingByte(UInt8(ascii: "c"), count: 4000)
            try await spool.store(testEnvelope("HELDREAD0001"), content: content, on: loop).get()
            // The journal holds a new message; its file comes after the spool's short wait in these tests.
            for _ in 0..<200 where !FileManager.default.fileExists(atPath: spool.path(of: "HELDREAD0001")) { try await Task.sleep(for: .milliseconds(10)) }
            let file = try spool.folder.load("HELDREAD0001").content
            #expect(file.storageCapacity > 4096)  // the file's buffer: envelope line, content and room to read
            let read = try await spool.load("HELDREAD0001", on: loop).get().content
            #expect(read == content && read.storageCapacity == 4096)
        }
    }

    /// A message the journal alone holds is in memory already: reading it
    /// back (the relay queue does, for content it let go) shares those bytes.
    @Test func aMessageTheJournalAloneHoldsIsReadBackWithoutACopy() throws {
        try withTemporarySpool(threads: 1, unwrittenWait: .hours(1)) { spool, loop, _ in
            var content = ByteBufferAllocator().buffer(capacity: 100 * 1024)
            content.writeRepeatingByte(UInt8(ascii: "c"), count: 100 * 1024)
            try spool.store(testEnvelope("HELDREAD0002"), content: content, on: loop).wait()
            let read = try spool.load("HELDREAD0002", on: loop).wait()
            #expect(read.envelope == testEnvelope("HELDREAD0002") && read.content == content)
            content.withUnsafeReadableBytes { stored in
                read.content.withUnsafeReadableBytes { #expect($0.baseAddress == stored.baseAddress) }
            }
        }
    }

    /// A file is read into a buffer of its size: one read, no buffer grown
    /// (and copied) on the way, none larger than the content needs.
    @Test func aFileIsReadIntoABufferItsSize() throws {
        let path = NSTemporaryDirectory() + "relais-read-\(UUID().uuidString)"
        defer { unlink(path) }
        try Data(repeating: UInt8(ascii: "f"), count: 102_500).write(to: URL(fileURLWithPath: path))
        let read = try DurableFiles.readFile(path)
        #expect(read.readableBytes == 102_500 && read.storageCapacity <= ByteBuffer.memory(holding: 102_500))
    }

    @Test func contentAlreadyInABufferItsSizeIsNotCopied() {
        var buffer = ByteBufferAllocator().buffer(capacity: 100 * 1024)
        buffer.writeRepeatingByte(UInt8(ascii: "x"), count: 100 * 1024)
        let kept = buffer.compacted()
        buffer.withUnsafeReadableBytes { original in
            kept.withUnsafeReadableBytes { #expect($0.baseAddress == original.baseAddress) }
        }
    }
}
