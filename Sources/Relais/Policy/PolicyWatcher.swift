import Foundation
import ServiceLifecycle
import UnixSignals
#if canImport(Glibc)
import Glibc
#endif

/// Watches for reasons to reload the policy and calls `onChange`: SIGHUP,
/// and changes to the policy's files (the config file and everything it
/// required or read) once a burst of them has settled. Uses inotify on the
/// files' folders (editors often replace a file by renaming), and compares
/// modification times where inotify is not available. A service: it stops
/// when the relay shuts down.
public final class PolicyWatcher: Service {
    private let files: @Sendable () -> [String]
    private let onChange: @Sendable () async -> Void
    private let watchesFiles: Bool
    private let hangups: UnixSignalsSequence
    private let settle: Double
    /// The files as they were when the running policy was loaded: a change
    /// made before the watch was set up still counts.
    private let baseline: [String: String]?

    /// `files` is asked again after every change, since a reload may
    /// require other files; with `watchesFiles` false only `hangups` (a
    /// sequence trapping SIGHUP, made before the relay starts so that no
    /// early signal is lost) reload. `baseline` is `fingerprints(of:)` of the
    /// files taken when the policy was loaded.
    public init(watchesFiles: Bool, hangups: UnixSignalsSequence, settle: Double = 0.2, baseline: [String: String]? = nil,
                files: @escaping @Sendable () -> [String], onChange: @escaping @Sendable () async -> Void) {
        self.baseline = baseline
        self.files = files
        self.onChange = onChange
        self.watchesFiles = watchesFiles
        self.hangups = hangups
        self.settle = settle
    }

    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in self.hangups.cancelOnGracefulShutdown() {
                    await self.onChange()
                }
            }
            if watchesFiles {
                group.addTask { await cancelWhenGracefulShutdown { await self.watchFiles() } }
            }
        }
    }

    private func watchFiles() async {
        let fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { return await watchByPolling() }
        defer { close(fd) }
        var watched = register(fd)
        var changedAt: Double? = baseline.map { $0 != Self.fingerprints(of: files()) } == true ? Self.now : nil
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: 100_000_000)
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 && events(in: buffer, count: count, watched: watched) { changedAt = Self.now }
            if let time = changedAt, Self.now - time >= settle {
                changedAt = nil
                await onChange()
                for descriptor in watched.keys { inotify_rm_watch(fd, descriptor) }
                watched = register(fd)
            }
        }
    }

    private static var now: Double { Date().timeIntervalSince1970 }

    /// Adds a watch per folder; returns folder watch -> file names in it.
    private func register(_ fd: Int32) -> [Int32: (folder: String, names: Set<String>)] {
        var byFolder: [String: Set<String>] = [:]
        for file in files() {
            byFolder[DurableFiles.parentFolder(of: file), default: []].insert(String(file.split(separator: "/").last ?? ""))
        }
        var watched: [Int32: (folder: String, names: Set<String>)] = [:]
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MODIFY)
        for (folder, names) in byFolder {
            let descriptor = inotify_add_watch(fd, folder, mask)
            if descriptor >= 0 { watched[descriptor] = (folder, names) }
        }
        return watched
    }

    private func events(in buffer: [UInt8], count: Int, watched: [Int32: (folder: String, names: Set<String>)]) -> Bool {
        var offset = 0
        var relevant = false
        let header = MemoryLayout<inotify_event>.size
        while offset + header <= count {
            let event = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: inotify_event.self) }
            let nameBytes = buffer[(offset + header)..<min(count, offset + header + Int(event.len))]
            let name = String(decoding: nameBytes.prefix(while: { $0 != 0 }), as: UTF8.self)
            if let entry = watched[event.wd], entry.names.contains(name) { relevant = true }
            offset += header + Int(event.len)
        }
        return relevant
    }

    private func watchByPolling() async {
        var last = baseline ?? fingerprints()
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: 1_000_000_000)
            guard fingerprints() != last else { continue }
            try? await Task.sleep(nanoseconds: UInt64(settle * 1e9))
            await onChange()
            last = fingerprints()
        }
    }

    private func fingerprints() -> [String: String] { Self.fingerprints(of: files()) }

    /// Each file's modification time and size (`missing` when it is gone).
    public static func fingerprints(of files: [String]) -> [String: String] {
        var result: [String: String] = [:]
        for file in files {
            var info = stat()
            result[file] = stat(file, &info) == 0 ? "\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)/\(info.st_size)" : "missing"
        }
        return result
    }
}
