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
        // A file that holds no whole message is set aside as the relay
        // queue would (`setAsideIfCorrupt`); one that cannot be read stays.
        let read = (try? await threadPool.runIfActive { [self] in
            messages.compactMap { message -> (id: String, entry: SpoolEntry, state: MessageState?)? in
                do {
                    return (message.id, try folder.load(message.id), message.state)
                } catch {
                    _ = setAsideIfCorrupt(message.id, after: error, logger: logger)
                    return nil
                }
            }
        }) ?? []
        let written = read.map { ($0.id, rewrite($0.entry.envelope, content: $0.entry.content, state: $0.state, on: loop)) }
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

    /// Removes the state files whose message is no longer queued (delivered,
    /// deleted or set aside), and their folder once empty. Blocking.
    func removeLegacyStateFolder() {
        for id in (try? DurableFiles.listFolder(folder.stateFolder)) ?? [] where access(folder.path(of: id), F_OK) != 0 {
            unlink(folder.legacyStatePath(of: id))
        }
        rmdir(folder.stateFolder)
    }
}
