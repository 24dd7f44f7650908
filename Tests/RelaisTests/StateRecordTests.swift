import Foundation
import Logging
import NIOCore
import NIOPosix
@testable import Relais
import Testing

/// A message's delivery state lives in its spool file: a record appended
/// after the content per save, the last whole one read back.
struct StateRecordTests {
    private let content = ByteBuffer(string: "Subject: state\r\n\r\n" + String(repeating: "body line\r\n", count: 50))

    private func state(_ attempts: Int, _ result: String = "451 4.3.0 try later") -> MessageState {
        var state = MessageState(envelope: testEnvelope("STATE0000001"))
        state.recipients[0].attempts = attempts
        state.recipients[0].lastResult = result
        return state
    }

    private func fileSize(_ path: String) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
    }

    @Test func theLastSavedStateIsReadBackWithTheContentUnchanged() throws {
        try withTemporarySpool(threads: 2) { spool, loop, _ in
            let id = "STATE0000001"
            try storeWithFiles([id], content: content, in: spool, on: loop)
            #expect(try spool.folder.load(id).state == nil)
            for attempts in 1...3 { try spool.saveState(state(attempts), of: id, on: loop).wait() }
            let entry = try spool.folder.load(id)
            #expect(entry.content == content)
            #expect(entry.state == state(3))
            #expect(entry.records == 3)
            let head = try spool.folder.loadEnvelope(id)
            #expect(head.size == content.readableBytes)
            #expect(head.state == state(3))
        }
    }

    @Test func aRecordCutShortLeavesThePreviousStateAndLaterRecordsStillCount() throws {
        try withTemporarySpool(threads: 2) { spool, loop, _ in
            let id = "STATE0000001"
            try storeWithFiles([id], content: content, in: spool, on: loop)
            try spool.saveState(state(1), of: id, on: loop).wait()
            try spool.saveState(state(2), of: id, on: loop).wait()
            let path = spool.folder.path(of: id)
            // What an append a crash interrupted leaves.
            #expect(truncate(path, off_t(try fileSize(path) - 20)) == 0)
            #expect(try spool.folder.load(id).state == state(1))
            #expect(try spool.folder.loadEnvelope(id).state == state(1))
            try spool.saveState(state(3), of: id, on: loop).wait()
            #expect(try spool.folder.load(id).state == state(3))
        }
    }

    @Test func anotherMessagesRecordsAreNotTakenForItsOwn() throws {
        try withTemporarySpool(threads: 2) { spool, loop, _ in
            try storeWithFiles(["STATE0000001", "STATE0000002"], content: content, in: spool, on: loop)
            try spool.saveState(state(4), of: "STATE0000001", on: loop).wait()
            // A recycled file's old records behind a new message of the same length.
            let old = try Data(contentsOf: URL(fileURLWithPath: spool.folder.path(of: "STATE0000001")))
            let new = try Data(contentsOf: URL(fileURLWithPath: spool.folder.path(of: "STATE0000002")))
            try (new + old.dropFirst(new.count)).write(to: URL(fileURLWithPath: spool.folder.path(of: "STATE0000002")))
            let entry = try spool.folder.load("STATE0000002")
            #expect(entry.content == content)
            #expect(entry.state == nil)
        }
    }

    @Test func aRewriteFoldsTheRecordsIntoOne() throws {
        try withTemporarySpool(threads: 2) { spool, loop, _ in
            let id = "STATE0000001"
            let envelope = testEnvelope(id)
            try spool.store(envelope, content: content, on: loop).wait()
            for attempts in 1...20 { try spool.saveState(state(attempts), of: id, on: loop).wait() }
            let long = try fileSize(spool.folder.path(of: id))
            try spool.rewrite(envelope, content: content, state: state(21), on: loop).wait()
            let entry = try spool.folder.load(id)
            #expect(entry.state == state(21))
            #expect(entry.records == 1)
            #expect(entry.content == content)
            #expect(try fileSize(spool.folder.path(of: id)) < long)
            #expect(DurableFiles.listHidden(spool.queueFolder).isEmpty)
        }
    }

    @Test func aRewriteDoesNotBringBackAMessageRemovedMeanwhile() throws {
        try withTemporarySpool(threads: 2) { spool, loop, _ in
            let id = "STATE0000001"
            try spool.store(testEnvelope(id), content: content, on: loop).wait()
            try spool.forget(id, on: loop).wait()
            #expect(throws: SystemCallError.self) { try spool.rewrite(testEnvelope(id), content: content, state: state(1), on: loop).wait() }
            #expect(!FileManager.default.fileExists(atPath: spool.folder.path(of: id)))
            #expect(DurableFiles.listHidden(spool.queueFolder).isEmpty)
        }
    }

    @Test func temporaryFilesACrashLeftAreRemovedAtStart() throws {
        try withTemporarySpool(threads: 1) { spool, _, pool in
            try DurableFiles.makeFolders([spool.folder.stateFolder])
            try Data("half".utf8).write(to: URL(fileURLWithPath: spool.folder.stateFolder + "/.STATE0000009"))
            try Data("half".utf8).write(to: URL(fileURLWithPath: spool.folder.temporaryPath(of: "STATE0000009")))
            _ = try Spool(root: spool.root, threadPool: pool)
            #expect(DurableFiles.listHidden(spool.folder.stateFolder).isEmpty)
            #expect(DurableFiles.listHidden(spool.queueFolder).isEmpty)
        }
    }

    @Test func anEarlierBuildsFilesAreUpgraded() async throws {
        try await withTemporarySpool(threads: 2) { spool, loop, _ in
            // An earlier build's layout: a file without a seal, its state in state/<ID>.
            let id = "STATE0000001"
            var file = try testEnvelope(id).encodedLine()
            file.writeImmutableBuffer(content)
            try Data(file.readableBytesView).write(to: URL(fileURLWithPath: spool.folder.path(of: id)))
            try DurableFiles.makeFolders([spool.folder.stateFolder])
            let legacy = try JSONEncoder().encode(state(7, "421 4.4.2 timed out"))
            try legacy.write(to: URL(fileURLWithPath: spool.folder.legacyStatePath(of: id)))
            // And one whose file holds no whole message.
            let damaged = "STATE0000002"
            try Data("{\"id\":".utf8).write(to: URL(fileURLWithPath: spool.folder.path(of: damaged)))
            try legacy.write(to: URL(fileURLWithPath: spool.folder.legacyStatePath(of: damaged)))
            #expect(spool.legacyStateIDs() == [id, damaged])
            let upgraded = await spool.upgrade([(id, spool.legacyState(of: id)), (damaged, spool.legacyState(of: damaged))],
                                               on: loop, logger: Logger(label: "test"))
            #expect(upgraded == [id])
            #expect(FileManager.default.fileExists(atPath: spool.root + "/corrupt/" + damaged))
            let entry = try spool.folder.load(id)
            #expect(entry.sealed)
            #expect(entry.content == content)
            #expect(entry.state == state(7, "421 4.4.2 timed out"))
            #expect(!FileManager.default.fileExists(atPath: spool.folder.legacyStatePath(of: id)))
            spool.removeLegacyStateFolder()
            #expect(!FileManager.default.fileExists(atPath: spool.folder.stateFolder))  // the damaged one's state went too
        }
    }
}
