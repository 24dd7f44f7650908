import Foundation
import NIOCore
import NIOPosix
@testable import Relais
import Testing

/// New small messages are made durable in the spool's journal before the
/// 250; their files are written only when they stay queued, and made
/// durable at the next checkpoint; a start writes back, from the journal,
/// each file a crash lost or left unfinished.
struct SpoolJournalTests {
    private static let content = ByteBuffer(string: "Subject: journaled\r\n\r\nbody\r\n")

    private static func entry(_ id: String, _ text: String) -> (id: String, pieces: [ByteBuffer]) {
        (id, [ByteBuffer(string: "envelope of \(id)\n"), ByteBuffer(string: text)])
    }

    private static func withJournalFile(_ body: (String) throws -> Void) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try body(folder + "/journal")
    }

    @Test func aStartReadsTheRecordsAppendedSinceTheLastCheckpointInOrder() throws {
        try Self.withJournalFile { path in
            let journal = try SpoolJournal(path: path, capacity: 1 << 16)
            #expect(try journal.append([Self.entry("JOURNAL0001", "first")]).get())
            #expect(try journal.append([Self.entry("JOURNAL0002", "second"), Self.entry("JOURNAL0003", "third")]).get())
            #expect(journal.sync() == nil)

            let entries = try SpoolJournal(path: path, capacity: 1 << 16).replay()
            #expect(entries.map(\.id) == ["JOURNAL0001", "JOURNAL0002", "JOURNAL0003"])
            #expect(entries.map { String(buffer: $0.bytes) } == ["envelope of JOURNAL0001\nfirst", "envelope of JOURNAL0002\nsecond",
                                                                 "envelope of JOURNAL0003\nthird"])
        }
    }

    @Test func aCheckpointLeavesNothingToReplayAndTheJournalStartsAgain() throws {
        try Self.withJournalFile { path in
            let journal = try SpoolJournal(path: path, capacity: 1 << 16)
            #expect(try journal.append([Self.entry("JOURNAL0001", "a longer text than the next one")]).get())
            #expect(journal.beginCheckpoint() == nil)
            journal.endCheckpoint(flushed: true)
            #expect(try SpoolJournal(path: path, capacity: 1 << 16).replay().isEmpty)

            // The next record is written over the first; what is left of the old one is not read.
            #expect(try journal.append([Self.entry("JOURNAL0002", "short")]).get())
            #expect(try SpoolJournal(path: path, capacity: 1 << 16).replay().map(\.id) == ["JOURNAL0002"])
        }
    }

    @Test func aFailedCheckpointKeepsTheRecords() throws {
        try Self.withJournalFile { path in
            let journal = try SpoolJournal(path: path, capacity: 1 << 16)
            #expect(try journal.append([Self.entry("JOURNAL0001", "kept")]).get())
            #expect(journal.beginCheckpoint() == nil)
            #expect(try SpoolJournal(path: path, capacity: 1 << 16).replay().isEmpty)
            journal.endCheckpoint(flushed: false)
            #expect(try SpoolJournal(path: path, capacity: 1 << 16).replay().map(\.id) == ["JOURNAL0001"])
        }
    }

    @Test func aDamagedRecordEndsTheReplay() throws {
        try Self.withJournalFile { path in
            let journal = try SpoolJournal(path: path, capacity: 1 << 16)
            #expect(try journal.append([Self.entry("JOURNAL0001", "whole")]).get())
            #expect(try journal.append([Self.entry("JOURNAL0002", "cut short by a crash")]).get())
            let file = try #require(FileHandle(forUpdatingAtPath: path))
            let bytes = try #require(try file.readToEnd())
            let damaged = try #require(bytes.range(of: Data("cut short".utf8)))
            try file.seek(toOffset: UInt64(damaged.lowerBound))
            try file.write(contentsOf: Data("XXX".utf8))
            try file.close()

            #expect(try SpoolJournal(path: path, capacity: 1 << 16).replay().map(\.id) == ["JOURNAL0001"])
        }
    }

    @Test func appendRefusesWhenACheckpointIsDueOrTheJournalIsFull() throws {
        try Self.withJournalFile { path in
            let journal = try SpoolJournal(path: path, capacity: 1 << 16, recordsPerCheckpoint: 2)
            #expect(try journal.append([Self.entry("JOURNAL0001", "one"), Self.entry("JOURNAL0002", "two")]).get())
            #expect(try !journal.append([Self.entry("JOURNAL0003", "three")]).get())
            journal.endCheckpoint(flushed: true)
            #expect(try journal.append([Self.entry("JOURNAL0003", "three")]).get())
            #expect(try !journal.append([Self.entry("JOURNAL0004", String(repeating: "x", count: 1 << 16))]).get())
        }
    }

    @Test func aStartWritesBackTheFileOfAJournaledMessageACrashLost() throws {
        try withTemporarySpool(threads: 1) { spool, loop, pool in
            try storeWithFiles(["JOURNALED001", "JOURNALED002"], content: Self.content, in: spool, on: loop)
            let written = try DurableFiles.readFile(spool.path(of: "JOURNALED001"))
            // As after a power loss: one file never reached the disk, the other only in part.
            #expect(unlink(spool.path(of: "JOURNALED001")) == 0)
            #expect(truncate(spool.path(of: "JOURNALED002"), 20) == 0)

            let restarted = try Spool(root: spool.root, threadPool: pool)
            #expect(restarted.restoredFromJournal == 2)
            #expect(try DurableFiles.readFile(spool.path(of: "JOURNALED001")) == written)
            #expect(try restarted.folder.load("JOURNALED002").content == Self.content)
            // Written back and checkpointed: the next start has nothing to do.
            #expect(try Spool(root: spool.root, threadPool: pool).restoredFromJournal == 0)
        }
    }

    @Test func aMessageDeliveredBeforeItsFileIsDueNeverGetsOne() throws {
        try withTemporarySpool(threads: 1, unwrittenWait: .hours(1)) { spool, loop, _ in
            try spool.store(testEnvelope("JOURNALED006"), content: Self.content, on: loop).wait()
            #expect(try spool.folder.queuedIDs().isEmpty)
            #expect(try spool.read("JOURNALED006").content == Self.content)
            #expect(try spool.load("JOURNALED006", on: loop).wait().envelope == testEnvelope("JOURNALED006"))
            #expect(spool.discard("JOURNALED006", on: loop) == nil)
            #expect(throws: SystemCallError.self) { try spool.read("JOURNALED006") }
            #expect(spool.checkpointAtStop() == nil)
            #expect(try spool.folder.queuedIDs().isEmpty)
            #expect(try FileManager.default.contentsOfDirectory(atPath: spool.root + "/free").isEmpty)
        }
    }

    @Test func aMessageThatStaysGetsItsFileAfterTheWait() throws {
        try withTemporarySpool(threads: 1, unwrittenWait: .milliseconds(300)) { spool, loop, _ in
            try spool.store(testEnvelope("JOURNALED007"), content: Self.content, on: loop).wait()
            #expect(try spool.folder.queuedIDs().isEmpty)
            for _ in 0..<200 where try spool.folder.queuedIDs().isEmpty { usleep(10_000) }
            #expect(try spool.folder.load("JOURNALED007").content == Self.content)
        }
    }

    @Test func aStateRecordForAMessageWithoutAFileWritesTheFileFirst() throws {
        try withTemporarySpool(threads: 1, unwrittenWait: .hours(1)) { spool, loop, _ in
            let envelope = testEnvelope("JOURNALED008")
            try spool.store(envelope, content: Self.content, on: loop).wait()
            var state = MessageState(envelope: envelope)
            state.recipients[0].attempts = 1
            try spool.saveState(state, of: envelope.id, on: loop).wait()
            let entry = try spool.folder.load(envelope.id)
            #expect(entry.content == Self.content && entry.state == state && entry.records == 1)
        }
    }

    @Test func aStartWritesBackAMessageTheJournalAloneHeld() throws {
        try withTemporarySpool(threads: 1, unwrittenWait: .hours(1)) { spool, loop, pool in
            try spool.store(testEnvelope("JOURNALED009"), content: Self.content, on: loop).wait()
            // As after `kill -9`: no file was written, no stop made a checkpoint.
            let restarted = try Spool(root: spool.root, threadPool: pool)
            #expect(restarted.restoredFromJournal == 1)
            #expect(try restarted.folder.load("JOURNALED009").content == Self.content)
        }
    }

    @Test(arguments: [false, true])
    func aMessageDeliveredBeforeACrashIsNotWrittenBack(withFile: Bool) throws {
        try withTemporarySpool(threads: 1, handOverWait: .milliseconds(10), unwrittenWait: withFile ? .milliseconds(10) : .hours(1)) {
            spool, loop, pool in
            if withFile {
                try storeWithFiles(["JOURNALED004"], content: Self.content, in: spool, on: loop)
            } else {
                try spool.store(testEnvelope("JOURNALED004"), content: Self.content, on: loop).wait()
            }
            #expect(spool.discard("JOURNALED004", on: loop) == nil)
            // No message takes a delivered file: it is recycled into free/
            // after the hand-over wait; the delivery record goes to the journal then.
            try waitUntilQueueEmpty(spool)
            usleep(200_000)
            #expect(try Spool(root: spool.root, threadPool: pool).restoredFromJournal == 0)
            #expect(try spool.folder.queuedIDs().isEmpty)
        }
    }

    @Test func aStartRecyclesTheFileACrashLeftOfADeliveredMessage() throws {
        try withTemporarySpool(threads: 1) { spool, loop, pool in
            try storeWithFiles(["JOURNALED010", "JOURNALED011"], content: Self.content, in: spool, on: loop)
            let left = try DurableFiles.readFile(spool.path(of: "JOURNALED010"))
            try spool.forget("JOURNALED010", on: loop).wait()
            // The next message's append writes the delivery record, if it is not written yet.
            try spool.store(testEnvelope("JOURNALED012"), content: Self.content, on: loop).wait()
            // As when a crash lost the removal.
            try DurableFiles.writeFile(spool.path(of: "JOURNALED010"), [left])

            let restarted = try Spool(root: spool.root, threadPool: pool)
            #expect(restarted.removedAfterCrash == 1)
            #expect(try restarted.folder.queuedIDs() == ["JOURNALED011", "JOURNALED012"])
        }
    }

    @Test func aStopWritesTheFilesTheJournalAloneHeldAndLeavesNothingToReplay() throws {
        try withTemporarySpool(threads: 1, unwrittenWait: .hours(1)) { spool, loop, pool in
            try spool.store(testEnvelope("JOURNALED005"), content: Self.content, on: loop).wait()
            #expect(spool.checkpointAtStop() == nil)
            #expect(try spool.folder.load("JOURNALED005").content == Self.content)
            #expect(unlink(spool.path(of: "JOURNALED005")) == 0)
            #expect(try Spool(root: spool.root, threadPool: pool).restoredFromJournal == 0)
        }
    }

    @Test func aStartLeavesWholeFilesAsTheyAre() throws {
        try withTemporarySpool(threads: 1) { spool, loop, pool in
            try storeWithFiles(["JOURNALED003"], content: Self.content, in: spool, on: loop)
            let restarted = try Spool(root: spool.root, threadPool: pool)
            #expect(restarted.restoredFromJournal == 0)
            #expect(try restarted.folder.load("JOURNALED003").content == Self.content)
        }
    }

    @Test func aMessageDeliveredWhileItsFileIsBeingWrittenIsHandedBackToRecycle() {
        let unwritten = UnwrittenFiles()
        let start = NIODeadline.now()
        #expect(unwritten.add([Self.entry("UNWRITTEN001", "a"), Self.entry("UNWRITTEN002", "b")], at: start))
        #expect(!unwritten.add([Self.entry("UNWRITTEN003", "c")], at: start + .seconds(1)))
        #expect(unwritten.takeForWriting(before: start).map(\.id).sorted() == ["UNWRITTEN001", "UNWRITTEN002"])
        #expect(unwritten.drop("UNWRITTEN001"))
        #expect(unwritten.drop("UNWRITTEN003"))
        #expect(!unwritten.drop("UNWRITTEN004"))
        #expect(unwritten.finishWriting(["UNWRITTEN001", "UNWRITTEN002"], written: ["UNWRITTEN001", "UNWRITTEN002"]) == ["UNWRITTEN001"])
        #expect(unwritten.pieces(of: "UNWRITTEN002") == nil && unwritten.pieces(of: "UNWRITTEN003") == nil)
        #expect(unwritten.nextDue(after: .seconds(1)) == nil)
        #expect(unwritten.add([Self.entry("UNWRITTEN005", "e")], at: start))
    }
}
