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

    /// A queued message: its envelope and content.
    public func load(_ id: String) throws -> (Envelope, ByteBuffer) {
        try Envelope.decode(spoolFile: try DurableFiles.readFile(path(of: id)))
    }

    /// A queued message's envelope and content size, without reading the
    /// content: what listing a long queue and resuming it need.
    public func loadEnvelope(_ id: String) throws -> (envelope: Envelope, size: Int) {
        let (head, size) = try DurableFiles.readHead(path(of: id), through: UInt8(ascii: "\n"))
        let (envelope, rest) = try Envelope.decode(spoolFile: head)
        return (envelope, size - (head.readableBytes - rest.readableBytes))
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
