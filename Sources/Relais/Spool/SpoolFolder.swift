import Foundation
import NIOCore

/// The spool's files as plain data, readable without a running relay: the
/// queued messages (`queue/<ID>`), the recipients' delivery state
/// (`state/<ID>`) and each upstream's health and quota usage
/// (`upstreams/<name>.json`). Used by the relay and by `relais queue`. Blocking.
public struct SpoolFolder: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    var queueFolder: String { root + "/queue" }
    var stateFolder: String { root + "/state" }
    var upstreamsFolder: String { root + "/upstreams" }

    public func path(of id: String) -> String { queueFolder + "/" + id }

    /// Where a message's delivery state is kept.
    func statePath(of id: String) -> String { stateFolder + "/" + id }

    /// Ids of every message in the queue, oldest first.
    public func queuedIDs() throws -> [String] {
        try DurableFiles.listFolder(queueFolder).filter(QueueID.isValid)
    }

    /// A queued message: its envelope and content, checked against the
    /// file's name and its seal (`SpoolSeal`).
    public func load(_ id: String) throws -> (Envelope, ByteBuffer) {
        let (envelope, seal, content) = try Envelope.decode(spoolFile: try DurableFiles.readFile(path(of: id)))
        try Self.check(envelope, named: id)
        try seal?.check(content)
        return (envelope, content)
    }

    /// A queued message's envelope and content size, without reading the
    /// content: what listing a long queue and resuming it need. Only the
    /// size is checked against the seal; the content is when it is loaded.
    public func loadEnvelope(_ id: String) throws -> (envelope: Envelope, size: Int) {
        let (head, fileSize) = try DurableFiles.readHead(path(of: id), through: UInt8(ascii: "\n"))
        let (envelope, seal, rest) = try Envelope.decode(spoolFile: head)
        try Self.check(envelope, named: id)
        let size = fileSize - (head.readableBytes - rest.readableBytes)
        try seal?.check(size: size)
        return (envelope, size)
    }

    /// A file whose envelope names another message holds a recycled
    /// file's old bytes: a write a crash interrupted.
    private static func check(_ envelope: Envelope, named id: String) throws {
        guard envelope.id == id else {
            throw SpoolFileError("spool file \(id) holds the envelope of \(envelope.id): a write that never finished")
        }
    }

    /// Each upstream's last saved health and quota usage, by name.
    func upstreamStates() -> [String: UpstreamLedger.Record] { Self.upstreamStates(in: upstreamsFolder) }

    static func upstreamStates(in folder: String) -> [String: UpstreamLedger.Record] {
        var states: [String: UpstreamLedger.Record] = [:]
        for name in (try? DurableFiles.listFolder(folder)) ?? [] where name.hasSuffix(".json") && !name.hasPrefix(".") {
            guard let buffer = try? DurableFiles.readFile(folder + "/" + name),
                  let record = try? JSONDecoder().decode(UpstreamLedger.Record.self, from: Data(buffer.readableBytesView))
            else { continue }
            states[String(name.dropLast(5))] = record
        }
        return states
    }

    /// The recipients' saved delivery state, if the relay queue wrote one.
    func savedState(of id: String) -> MessageState? {
        guard let buffer = try? DurableFiles.readFile(statePath(of: id)) else { return nil }
        return try? MessageState.decode(buffer)
    }
}
