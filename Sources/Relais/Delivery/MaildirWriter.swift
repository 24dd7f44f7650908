import NIOConcurrencyHelpers
import NIOCore

/// The one way Relais writes into maildirs: the file a message becomes in
/// a maildir, with the maildir's folders made the first time it is used.
/// Both the batched local path and the maildir courier write through it.
final class MaildirWriter: Sendable {
    let hostname: String
    /// Maildirs whose folders exist already.
    private let prepared = NIOLockedValueBox<Set<String>>([])

    init(hostname: String) {
        self.hostname = hostname
    }

    /// The pending file for `envelope` in the maildir at `folder`, creating
    /// its folders the first time. Blocking: call on the thread pool.
    func pendingFile(in folder: String, for envelope: Envelope, content: ByteBuffer) throws -> DurableFiles.PendingFile {
        let maildir: Maildir
        if prepared.withLockedValue({ $0.contains(folder) }) {
            maildir = Maildir(existing: folder, hostname: hostname)
        } else {
            maildir = try Maildir(root: folder, hostname: hostname)
            prepared.withLockedValue { _ = $0.insert(folder) }
        }
        return maildir.pendingFile(for: envelope, content: content)
    }
}
