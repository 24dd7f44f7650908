import Foundation
import NIOCore
import NIOPosix
@testable import Relais
import Testing

/// A real spool in a fresh temporary folder, with its own thread pool and
/// event loop, for the tests that write through one; removed afterwards.
/// A new message gets its file after `unwrittenWait` (`storeWithFile`).
func withTemporarySpool(threads: Int, handOverWait: TimeAmount = .milliseconds(50), unwrittenWait: TimeAmount = .milliseconds(10),
                        _ body: (Spool, any EventLoop, NIOThreadPool) throws -> Void) throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("spool-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: root) }
    let pool = NIOThreadPool(numberOfThreads: threads)
    pool.start()
    defer { try? pool.syncShutdownGracefully() }
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { try? group.syncShutdownGracefully() }
    try body(try Spool(root: root, threadPool: pool, handOverWait: handOverWait, unwrittenWait: unwrittenWait), group.next(), pool)
}

/// The envelope of a test message with one recipient.
func testEnvelope(_ id: String) -> Envelope {
    Envelope(id: id, sender: "s@example.org", recipients: ["r@example.com"], smtpUTF8: false, body: nil,
             receivedAt: 1_796_000_000, clientIP: "127.0.0.1", helo: "client.example")
}

/// `withTemporarySpool` for a test that awaits.
func withTemporarySpool(threads: Int, _ body: (Spool, any EventLoop, NIOThreadPool) async throws -> Void) async throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("spool-\(UUID().uuidString)").path
    let pool = NIOThreadPool(numberOfThreads: threads)
    pool.start()
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var failure: (any Error)?
    do {
        try await body(try Spool(root: root, threadPool: pool, unwrittenWait: .milliseconds(10)), group.next(), pool)
    } catch {
        failure = error
    }
    try? await pool.shutdownGracefully()
    try? await group.shutdownGracefully()
    try? FileManager.default.removeItem(atPath: root)
    if let failure { throw failure }
}

/// Waits up to two seconds for the spool's queue folder to empty.
func waitUntilQueueEmpty(_ spool: Spool) throws {
    for _ in 0..<200 where try !spool.folder.queuedIDs().isEmpty { usleep(10_000) }
    #expect(try spool.folder.queuedIDs().isEmpty)
}

/// Stores the messages, then waits up to two seconds for their files: a
/// new message the journal holds gets one after the spool's `unwrittenWait`.
func storeWithFiles(_ ids: [String], content: ByteBuffer, in spool: Spool, on loop: any EventLoop) throws {
    try EventLoopFuture.andAllSucceed(ids.map { spool.store(testEnvelope($0), content: content, on: loop) }, on: loop).wait()
    for _ in 0..<200 where try !Set(ids).isSubset(of: spool.folder.queuedIDs()) { usleep(10_000) }
    #expect(try Set(ids).isSubset(of: spool.folder.queuedIDs()))
}
