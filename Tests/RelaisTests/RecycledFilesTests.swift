import CSystemShims
import Foundation
@testable import Relais
import Testing

/// Delivered files are all moved to `free/`, however many it holds; a
/// thread of the lowest priority unlinks those beyond its capacity, the
/// oldest first, and files kept there still go to new messages.
struct RecycledFilesTests {
    private let root = FileManager.default.temporaryDirectory.appendingPathComponent("recycled-\(UUID().uuidString)").path

    private func makeFiles(_ count: Int, in folder: String, size: Int = 100) throws -> [String] {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return try (0 ..< count).map { index in
            let path = folder + "/M\(index)"
            try Data(repeating: UInt8(ascii: "x"), count: size).write(to: URL(fileURLWithPath: path))
            return path
        }
    }

    private func names(in folder: String) throws -> Set<String> {
        Set(try FileManager.default.contentsOfDirectory(atPath: folder))
    }

    /// Waits up to five seconds for `folder` to hold `count` files.
    private func waitForCount(_ count: Int, in folder: String) throws {
        for _ in 0 ..< 500 where try names(in: folder).count != count { usleep(10_000) }
    }

    @Test func filesBeyondCapacityAreUnlinkedOldestFirstAndTheRestAreReused() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let recycled = try RecycledFiles(folder: root + "/free", capacity: 3)
        for path in try makeFiles(10, in: root + "/queue") {
            #expect(recycled.recycle(path) == nil)
        }
        #expect(try names(in: root + "/queue").isEmpty)
        try waitForCount(3, in: root + "/free")
        #expect(try names(in: root + "/free") == ["9", "10", "11"])

        #expect(recycled.take() == nil)
        let covered = recycled.flushStarting()
        recycled.flushed(covered)
        let taken = try #require(recycled.take())
        #expect(FileManager.default.fileExists(atPath: taken))
    }

    @Test func largeFilesAreUnlinkedAtOnce() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let recycled = try RecycledFiles(folder: root + "/free", capacity: 3)
        let large = try makeFiles(1, in: root + "/queue", size: RecycledFiles.largestKept + 1)
        #expect(recycled.recycle(large[0]) == nil)
        #expect(try names(in: root + "/queue").isEmpty)
        #expect(try names(in: root + "/free").isEmpty)
    }

    /// A start that finds more files in `free/` than it keeps (a crash
    /// during a trim) trims them too.
    @Test func aStartTrimsWhatAnEarlierRunLeftBeyondCapacity() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        for (index, path) in try makeFiles(6, in: root + "/free").enumerated() {
            try FileManager.default.moveItem(atPath: path, toPath: root + "/free/\(index + 1)")
        }
        let recycled = try RecycledFiles(folder: root + "/free", capacity: 2)
        try waitForCount(2, in: root + "/free")
        #expect(try names(in: root + "/free") == ["5", "6"])
        let covered = recycled.flushStarting()
        recycled.flushed(covered)
        #expect(recycled.take() == root + "/free/6")
    }

    /// The class the trimming thread takes: Linux SCHED_IDLE (5), which
    /// runs only on CPU time nothing else wants.
    @Test func lowerThreadPriorityPutsTheThreadInTheIdleClass() async {
        let policy = await withCheckedContinuation { continuation in
            Thread {
                _ = relais_lower_thread_priority()
                continuation.resume(returning: sched_getscheduler(0))
            }.start()
        }
        #expect(policy == 5)
    }
}
