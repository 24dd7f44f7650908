import Foundation
import NIOCore
import NIOPosix
@testable import Relais
import Testing

/// A delivered message's files are removed on the thread pool while its
/// delivery goes on, but only so far behind: once `Spool.removalsAhead`
/// removals wait, the next delivery waits for its own, so a crash delivers
/// only a few messages twice. While the writer runs, a delivered file is
/// handed to the next message it writes instead (`RecycledFiles`).
struct SpoolRemovalTests {
    @Test func discardMakesTheCallerWaitOnceTooManyRemovalsAreBehind() throws {
        try withTemporarySpool(threads: 1) { spool, loop, pool in
            let ids = (0...Spool.removalsAhead).map { String(format: "REMOVAL%05d", $0) }
            let content = ByteBuffer(string: "Subject: removed\r\n\r\nbody\r\n")
            let stored = ids.map { spool.store(testEnvelope($0), content: content, on: loop) }
            try EventLoopFuture.andAllSucceed(stored, on: loop).wait()

            // The pool's only thread is busy, so every removal stays waiting.
            let release = DispatchSemaphore(value: 0)
            let busy = DispatchSemaphore(value: 0)
            pool.submit { _ in
                busy.signal()
                release.wait()
            }
            busy.wait()
            for id in ids.dropLast() {
                #expect(spool.discard(id, on: loop) == nil)
            }
            let last = try #require(ids.last)
            let waited = spool.discard(last, on: loop)
            #expect(waited != nil)
            #expect(try spool.folder.queuedIDs().count == ids.count)

            release.signal()
            try waited?.wait()
            #expect(try spool.folder.queuedIDs().isEmpty)
        }
    }

    @Test func aFileDeliveredWhileTheWriterRunsHoldsTheNextMessageAndTheRestAreRecycledWhenItStops() throws {
        try withTemporarySpool(threads: 1) { spool, loop, pool in
            let content = ByteBuffer(string: "Subject: handed over\r\n\r\nbody\r\n")
            let delivered = ["HANDOVER0001", "HANDOVER0002"]
            try EventLoopFuture.andAllSucceed(delivered.map { spool.store(testEnvelope($0), content: content, on: loop) },
                                              on: loop).wait()
            let inodes = try delivered.map { try inode(spool.path(of: $0)) }

            // The pool's only thread is busy: the next write waits, and the writer counts as running.
            let release = DispatchSemaphore(value: 0)
            let busy = DispatchSemaphore(value: 0)
            pool.submit { _ in
                busy.signal()
                release.wait()
            }
            busy.wait()
            let written = spool.store(testEnvelope("HANDOVER0003"), content: content, on: loop)
            for id in delivered { #expect(spool.discard(id, on: loop) == nil) }
            release.signal()
            try written.wait()

            // The oldest delivered file took the new message; the other one
            // left queue/ for free/ when the writer went idle.
            #expect(try inode(spool.path(of: "HANDOVER0003")) == inodes[0])
            #expect(try spool.folder.load("HANDOVER0003").content == content)
            let free = spool.root + "/free"
            for _ in 0..<200 where try spool.folder.queuedIDs().count > 1 { usleep(10_000) }
            #expect(try spool.folder.queuedIDs() == ["HANDOVER0003"])
            let recycled = try FileManager.default.contentsOfDirectory(atPath: free).map { try inode(free + "/" + $0) }
            #expect(recycled == [inodes[1]])
        }
    }

    @Test func aFileDeliveredWhileTheWriterIsIdleIsRecycled() throws {
        try withTemporarySpool(threads: 1) { spool, loop, _ in
            try spool.store(testEnvelope("HANDOVER0004"), content: ByteBuffer(string: "Subject: x\r\n\r\ny\r\n"), on: loop).wait()
            #expect(spool.discard("HANDOVER0004", on: loop) == nil)
            for _ in 0..<200 where try !spool.folder.queuedIDs().isEmpty { usleep(10_000) }
            #expect(try spool.folder.queuedIDs().isEmpty)
            #expect(try FileManager.default.contentsOfDirectory(atPath: spool.root + "/free").count == 1)
        }
    }

    private func inode(_ path: String) throws -> UInt64 {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? UInt64)
    }
}
