import Foundation
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// Watches the policy's files (the config file and everything it required
/// or read) and calls `onChange` once a burst of changes has settled. Uses
/// inotify on the files' folders (editors often replace a file by renaming),
/// and polls modification times where inotify is not available.
public final class PolicyWatcher: Sendable {
    private let files: @Sendable () -> [String]
    private let onChange: @Sendable () -> Void
    private let stopped = NIOLockedValueBox(false)
    private let settle: TimeInterval

    /// `files` is asked again after every change, since a reload may
    /// require other files.
    public init(settle: TimeInterval = 0.2, files: @escaping @Sendable () -> [String],
                onChange: @escaping @Sendable () -> Void) {
        self.files = files
        self.onChange = onChange
        self.settle = settle
    }

    public func start() {
        let thread = Thread { [self] in
            if !watchWithInotify() { watchByPolling() }
        }
        thread.name = "relais.policy-watcher"
        thread.start()
    }

    public func stop() {
        stopped.withLockedValue { $0 = true }
    }

    private var isStopped: Bool { stopped.withLockedValue { $0 } }

    /// Returns false when inotify cannot be used here.
    private func watchWithInotify() -> Bool {
        let fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var watched = register(fd)
        var changedAt: Date?
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while !isStopped {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 100)
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 && events(in: buffer, count: count, watched: watched) { changedAt = Date() }
            if let time = changedAt, Date().timeIntervalSince(time) >= settle {
                changedAt = nil
                onChange()
                for descriptor in watched.keys { inotify_rm_watch(fd, descriptor) }
                watched = register(fd)
            }
        }
        return true
    }

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

    private func watchByPolling() {
        var last = fingerprints()
        while !isStopped {
            Thread.sleep(forTimeInterval: 1)
            let now = fingerprints()
            if now != last {
                Thread.sleep(forTimeInterval: settle)
                onChange()
                last = fingerprints()
            }
        }
    }

    private func fingerprints() -> [String: String] {
        var result: [String: String] = [:]
        for file in files() {
            var info = stat()
            result[file] = stat(file, &info) == 0 ? "\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)/\(info.st_size)" : "missing"
        }
        return result
    }
}
