import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// A maildir (`tmp/`, `new/`, `cur/`), the local delivery target. A message
/// is written in `tmp/` under a name that carries its seal (size and
/// CRC-32C, `,RS=<size>,RC=<crc>`), made durable there, and renamed into
/// `new/`, as the maildir convention asks, without a second flush for the
/// rename: a rename a crash undid is redone at the next start
/// (`recoverInterruptedDeliveries`), and a file a crash cut short fails its
/// seal and is deleted (it was never acknowledged). So a message durable in
/// `tmp/` is delivered: a client waiting for its 250 is answered then,
/// before the rename (`MaildirDelivery`). The file name is derived from the
/// queue id, so a delivery repeated after a crash replaces the first copy
/// instead of duplicating it.
public struct Maildir: Sendable {
    public let root: String
    public let hostname: String

    /// The host part of file names: `/` and `:` escaped as the maildir
    /// specification asks.
    private let escapedHostname: String

    /// Creates the three folders. Blocking: call at start-up or on a thread pool.
    public init(root: String, hostname: String) throws {
        self.root = root
        self.hostname = hostname
        self.escapedHostname = hostname.replacingOccurrences(of: "/", with: "\\057").replacingOccurrences(of: ":", with: "\\072")
        try DurableFiles.makeFolders([root + "/tmp", root + "/new", root + "/cur"])
    }

    func pendingFile(for envelope: Envelope, content: ByteBuffer) -> DurableFiles.PendingFile {
        let name = fileName(for: envelope)
        return DurableFiles.PendingFile(finalPath: root + "/new/" + name, contents: [content],
                                        naming: .durableUnderTemporaryName(root + "/tmp/" + name + Self.suffix(SpoolSeal(of: content))))
    }

    /// `<seconds>.R<queue id>.<host>`.
    func fileName(for envelope: Envelope) -> String {
        "\(Int(envelope.receivedAt)).R\(envelope.id).\(escapedHostname)"
    }

    private static func suffix(_ seal: SpoolSeal) -> String {
        ",RS=\(seal.contentSize),RC=" + String(seal.contentCRC32C, radix: 16)
    }

    /// The final name and seal of a file in `tmp/` that Relais wrote.
    private static func sealed(_ name: String) -> (finalName: String, seal: SpoolSeal)? {
        guard let marker = name.range(of: ",RS=", options: .backwards) else { return nil }
        let fields = name[marker.upperBound...].split(separator: ",", omittingEmptySubsequences: false)
        guard fields.count == 2, fields[1].hasPrefix("RC="), let size = Int(fields[0]), size >= 0,
              let crc = UInt32(fields[1].dropFirst(3), radix: 16) else { return nil }
        return (String(name[..<marker.lowerBound]), SpoolSeal(contentSize: size, contentCRC32C: crc))
    }

    /// Finishes what a stopped run left in `tmp/`: each whole file Relais
    /// wrote (durable, so acknowledged or about to be) is moved into
    /// `new/`; one its seal refuses was cut short before it was durable and
    /// is deleted. Other programs' files are left alone. Blocking: call at
    /// start-up, before any delivery.
    func recoverInterruptedDeliveries() throws -> (moved: Int, deleted: Int) {
        var (moved, deleted) = (0, 0)
        for name in try DurableFiles.listFolder(root + "/tmp") {
            guard let (finalName, seal) = Self.sealed(name) else { continue }
            let path = root + "/tmp/" + name
            if (try? seal.check(DurableFiles.readFile(path))) != nil {
                if rename(path, root + "/new/" + finalName) == 0 { moved += 1 }
            } else if unlink(path) == 0 {
                deleted += 1
            }
        }
        if moved > 0, let error = DurableFiles.syncFolder(root + "/new") { throw error }
        return (moved, deleted)
    }
}
