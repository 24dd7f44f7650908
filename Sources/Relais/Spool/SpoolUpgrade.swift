import Foundation
import Logging
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Brings the files an earlier build left in the spool to this build's
/// layout while the queue is read back after a start: a delivery state
/// kept in a file of its own (`state/<ID>`) becomes a record in its
/// message's file (`StateRecord`), and a message file without a seal is
/// written anew with one (a record may only follow sealed content).
extension Spool {
    /// The ids of the messages with a state file of an earlier build. Blocking.
    func legacyStateIDs() -> Set<String> {
        Set(((try? DurableFiles.listFolder(folder.stateFolder)) ?? []).filter(QueueID.isValid))
    }

    /// A state file of an earlier build, read. Blocking.
    func legacyState(of id: String) -> MessageState? {
        guard let buffer = try? DurableFiles.readFile(folder.legacyStatePath(of: id)) else { return nil }
        return try? JSONDecoder().decode(MessageState.self, from: Data(buffer.readableBytesView))
    }

    /// Writes each of these messages anew in this build's layout, with
    /// `state` as its record, then removes its old state file. Returns the
    /// ids done; the others stay as they were, for the next start.
    func upgrade(_ messages: [(id: String, state: MessageState?)], on loop: any EventLoop, logger: Logger) async -> Set<String> {
        let read = (try? await threadPool.runIfActive { [folder] in
            messages.map { message in Result { (try folder.load(message.id), message.state) } }
        }) ?? []
        var written: [(id: String, future: EventLoopFuture<Void>)] = []
        for (message, result) in zip(messages, read) {
            switch result {
            case .success(let (entry, state)):
                written.append((message.id, rewrite(entry.envelope, content: entry.content, state: state, on: loop)))
            case .failure(let error):
                logger.error("cannot upgrade queued message", metadata: ["id": "\(message.id)", "error": "\(error)"])
            }
        }
        var done: Set<String> = []
        for (id, future) in written {
            do {
                try await future.get()
                done.insert(id)
            } catch {
                logger.error("cannot upgrade queued message", metadata: ["id": "\(id)", "error": "\(error)"])
            }
        }
        _ = try? await threadPool.runIfActive { [folder, done] in
            for id in done { unlink(folder.legacyStatePath(of: id)) }
        }
        if !done.isEmpty { logger.info("queued messages upgraded to this build's spool layout", metadata: ["messages": "\(done.count)"]) }
        return done
    }

    /// Removes the state files whose message left the queue, and their
    /// folder once empty. Blocking.
    func removeLegacyStateFolder(queued: Set<String>) {
        for id in (try? DurableFiles.listFolder(folder.stateFolder)) ?? [] where !queued.contains(id) {
            unlink(folder.legacyStatePath(of: id))
        }
        rmdir(folder.stateFolder)
    }
}
