import Foundation
import NIOCore
import NIOPosix
@testable import Relais
import Testing

/// A delivered message's files are removed on the thread pool while its
/// delivery goes on, but only so far behind: once `Spool.removalsAhead`
/// removals wait, the next delivery waits for its own, so a crash delivers
/// only a few messages twice.
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
}
