import Foundation
import NIOCore
import NIOPosix
@testable import Relais
import Testing

/// A delivered message's file is first offered to the next message written
/// (`RecycledFiles.handOver`) and recycled when none took it in a short
/// while; past `Spool.removalsAhead` such files it is removed on the thread
/// pool while delivery goes on, but only so far behind: once as many
/// removals wait, the next delivery waits for its own, so a crash delivers
/// only a few messages twice.
struct SpoolRemovalTests {
    private static let content = ByteBuffer(string: "Subject: removed\r\n\r\nbody\r\n")

    @Test func discardMakesTheCallerWaitOnceTooManyRemovalsAreBehind() throws {
        try withTemporarySpool(threads: 1, handOverWait: .hours(1)) { spool, loop, pool in
            let ids = (0...2 * Spool.removalsAhead).map { String(format: "REMOVAL%05d", $0) }
            let stored = ids.map { spool.store(testEnvelope($0), content: Self.content, on: loop) }
            try EventLoopFuture.andAllSucceed(stored, on: loop).wait()

            // The pool's only thread is busy, so every removal stays waiting.
            let release = occupy(pool)
            // As many wait to be handed over, as many more to be removed.
            for id in ids.dropLast() {
                #expect(spool.discard(id, on: loop) == nil)
            }
            let last = try #require(ids.last)
            let waited = spool.discard(last, on: loop)
            #expect(waited != nil)
            #expect(try spool.folder.queuedIDs().count == ids.count)

            release.signal()
            try waited?.wait()
            #expect(try spool.folder.queuedIDs() == Array(ids.prefix(Spool.removalsAhead)))
            spool.recycleDelivered()
            try waitUntilQueueEmpty(spool)
        }
    }

    @Test func aDeliveredFileHoldsTheNextMessage() throws {
        try withTemporarySpool(threads: 1, handOverWait: .hours(1)) { spool, loop, _ in
            let delivered = ["HANDOVER0001", "HANDOVER0002"]
            try storeWithFiles(delivered, content: Self.content, in: spool, on: loop)
            let inodes = try delivered.map { try inode(spool.path(of: $0)) }
            for id in delivered { #expect(spool.discard(id, on: loop) == nil) }

            // The oldest delivered file takes the next message, written over and renamed.
            try storeWithFiles(["HANDOVER0003"], content: Self.content, in: spool, on: loop)
            #expect(try inode(spool.path(of: "HANDOVER0003")) == inodes[0])
            #expect(try spool.folder.load("HANDOVER0003").content == Self.content)
            #expect(try spool.folder.queuedIDs() == ["HANDOVER0002", "HANDOVER0003"])
            #expect(try freeFiles(spool).isEmpty)
        }
    }

    @Test func aDeliveredFileRemovedByHandMeanwhileIsNoFailure() throws {
        try withTemporarySpool(threads: 1, handOverWait: .hours(1)) { spool, loop, _ in
            try storeWithFiles(["HANDOVER0005"], content: Self.content, in: spool, on: loop)
            #expect(spool.discard("HANDOVER0005", on: loop) == nil)
            #expect(unlink(spool.path(of: "HANDOVER0005")) == 0)
            try storeWithFiles(["HANDOVER0006"], content: Self.content, in: spool, on: loop)
            #expect(try spool.folder.queuedIDs() == ["HANDOVER0006"])
            #expect(try spool.folder.load("HANDOVER0006").content == Self.content)
        }
    }

    @Test func aDeliveredFileNoMessageTookIsRecycledAfterTheWait() throws {
        try withTemporarySpool(threads: 1, handOverWait: .milliseconds(20)) { spool, loop, _ in
            try storeWithFiles(["HANDOVER0004"], content: Self.content, in: spool, on: loop)
            let delivered = try inode(spool.path(of: "HANDOVER0004"))
            #expect(spool.discard("HANDOVER0004", on: loop) == nil)
            try waitUntilQueueEmpty(spool)
            #expect(try freeFiles(spool).map(inode) == [delivered])
        }
    }

    @Test func deliveredFilesWaitWhileTheRemovalsAreBehind() throws {
        try withTemporarySpool(threads: 1, handOverWait: .milliseconds(10)) { spool, loop, pool in
            let ids = (0..<2 * Spool.removalsAhead).map { String(format: "BEHIND%05d", $0) }
            try EventLoopFuture.andAllSucceed(ids.map { spool.store(testEnvelope($0), content: Self.content, on: loop) },
                                              on: loop).wait()
            let release = occupy(pool)
            // Half are offered to the next message, half go to the remover, which cannot run.
            for id in ids { #expect(spool.discard(id, on: loop) == nil) }
            usleep(100_000)
            // The offered ones outwaited the hand-over wait, but the removals
            // waiting leave them no room: none was added behind.
            #expect(spool.removalsWaiting == Spool.removalsAhead)
            release.signal()
            try waitUntilQueueEmpty(spool)
        }
    }

    /// Keeps the pool's only thread busy until the returned semaphore is signalled.
    private func occupy(_ pool: NIOThreadPool) -> DispatchSemaphore {
        let release = DispatchSemaphore(value: 0)
        let busy = DispatchSemaphore(value: 0)
        pool.submit { _ in
            busy.signal()
            release.wait()
        }
        busy.wait()
        return release
    }

    private func freeFiles(_ spool: Spool) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: spool.root + "/free").map { spool.root + "/free/" + $0 }
    }

    private func inode(_ path: String) throws -> UInt64 {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? UInt64)
    }
}
