import Foundation
import Logging
import NIOCore
@testable import Relais
import Testing

/// A maildir file durable in `tmp/` is delivered: the client is answered
/// before its move into `new/`, and a move that fails then keeps the file
/// in `tmp/` and is tried again until it succeeds.
struct UnfinishedMaildirMovesTests {
    private let root = FileManager.default.temporaryDirectory.appendingPathComponent("maildir-\(UUID().uuidString)").path

    private func names(in folder: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
    }

    /// A maildir whose `new/` is a file, so no move into it succeeds.
    private func brokenMaildir() throws -> (MaildirWriter, DurableFiles.PendingFile) {
        let writer = MaildirWriter(hostname: "host", registry: root + "/maildirs", logger: Logger(label: "test"))
        let file = try writer.pendingFile(in: root + "/mail", for: testEnvelope("HOM0000000001"),
                                          content: ByteBuffer(string: "Subject: x\r\n\r\nbody\r\n"))
        try FileManager.default.removeItem(atPath: root + "/mail/new")
        try Data("not a folder".utf8).write(to: URL(fileURLWithPath: root + "/mail/new"))
        return (writer, file)
    }

    @Test func aCommittedFileWhoseMoveFailsStaysInTmp() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (_, file) = try brokenMaildir()
        var durable: [Bool] = []
        let results = DurableFiles.write([file]) { files in
            durable = files
            return [0]
        }
        #expect(durable == [true])
        guard case .failure(let error) = results[0] else {
            Issue.record("the move into a file succeeded")
            return
        }
        #expect(error.errno == ENOTDIR)
        #expect(names(in: root + "/mail/tmp").count == 1)
    }

    @Test func anUncommittedFileWhoseMoveFailsIsRemoved() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (_, file) = try brokenMaildir()
        let results = DurableFiles.write([file])
        #expect((try? results[0].get()) == nil)
        #expect(names(in: root + "/mail/tmp").isEmpty)
    }

    @Test func aFailedMoveIsTriedAgainUntilItSucceeds() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (writer, file) = try brokenMaildir()
        let results = DurableFiles.write([file]) { _ in [0] }
        guard case .failure(let error) = results[0] else {
            Issue.record("the move into a file succeeded")
            return
        }
        #expect(!writer.startsRetrying())
        writer.moveLater(file, after: error)
        #expect(writer.startsRetrying())
        #expect(!writer.startsRetrying())  // one retrying at a time
        #expect(writer.finishMoves())  // new/ is still a file
        #expect(names(in: root + "/mail/tmp").count == 1)

        try FileManager.default.removeItem(atPath: root + "/mail/new")
        try FileManager.default.createDirectory(atPath: root + "/mail/new", withIntermediateDirectories: false)
        #expect(!writer.finishMoves())
        #expect(names(in: root + "/mail/tmp").isEmpty)
        #expect(try Data(contentsOf: URL(fileURLWithPath: file.finalPath)) == Data("Subject: x\r\n\r\nbody\r\n".utf8))
        #expect(!writer.startsRetrying())
    }

    @Test func aFileAStartMovedMeanwhileIsNotTriedAgain() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (writer, file) = try brokenMaildir()
        let results = DurableFiles.write([file]) { _ in [0] }
        guard case .failure(let error) = results[0], let temporaryPath = file.temporaryPath else {
            Issue.record("the move into a file succeeded")
            return
        }
        writer.moveLater(file, after: error)
        #expect(writer.startsRetrying())
        try FileManager.default.removeItem(atPath: temporaryPath)
        #expect(!writer.finishMoves())
    }
}
