import NIOCore

/// The spool's files as plain data, readable without a running relay: the
/// queued messages (`queue/<ID>`) and the recipients' delivery state
/// (`state/<ID>`). Used by the relay and by `relais queue`. Blocking.
public struct SpoolFolder: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    var queueFolder: String { root + "/queue" }
    var stateFolder: String { root + "/state" }

    public func path(of id: String) -> String { queueFolder + "/" + id }

    /// Ids of every message in the queue, oldest first.
    public func queuedIDs() throws -> [String] {
        try DurableFiles.listFolder(queueFolder).filter(QueueID.isValid)
    }

    /// A queued message: its envelope and content.
    public func load(_ id: String) throws -> (Envelope, ByteBuffer) {
        try Envelope.decode(spoolFile: try DurableFiles.readFile(path(of: id)))
    }

    /// The recipients' saved delivery state, if the relay queue wrote one.
    func savedState(of id: String) -> MessageState? {
        guard let buffer = try? DurableFiles.readFile(stateFolder + "/" + id) else { return nil }
        return try? MessageState.decode(buffer)
    }
}
