import NIOConcurrencyHelpers
import NIOCore

/// The one way Relais writes into maildirs: the file a message becomes in
/// a maildir, with the maildir's folders made the first time it is used.
/// Both the batched local path and the maildir courier write through it.
final class MaildirWriter: Sendable {
    let hostname: String
    /// Maildirs whose folders exist already.
    private let prepared = NIOLockedValueBox<[String: Maildir]>([:])

    init(hostname: String) {
        self.hostname = hostname
    }

    /// The pending file for `envelope` in the maildir at `folder`, creating
    /// its folders the first time. Blocking: call on the thread pool.
    func pendingFile(in folder: String, for envelope: Envelope, content: ByteBuffer) throws -> DurableFiles.PendingFile {
        if let maildir = prepared.withLockedValue({ $0[folder] }) {
            return maildir.pendingFile(for: envelope, content: content)
        }
        let maildir = try Maildir(root: folder, hostname: hostname)
        prepared.withLockedValue { $0[folder] = maildir }
        return maildir.pendingFile(for: envelope, content: content)
    }
}
