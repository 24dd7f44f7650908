import Foundation
import NIOCore

/// A maildir (`tmp/`, `new/`, `cur/`), the local delivery target. Messages
/// are written in `tmp/` and renamed into `new/` once durable, as the maildir
/// convention requires. The file name is derived from the queue id, so a
/// delivery repeated after a crash replaces the first copy instead of
/// duplicating it.
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
        return DurableFiles.PendingFile(temporaryPath: root + "/tmp/" + name, finalPath: root + "/new/" + name, contents: [content])
    }

    /// `<seconds>.R<queue id>.<host>`.
    func fileName(for envelope: Envelope) -> String {
        "\(Int(envelope.receivedAt)).R\(envelope.id).\(escapedHostname)"
    }
}
