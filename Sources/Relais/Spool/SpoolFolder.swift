import Foundation
import NIOCore

/// The spool's files as plain data, readable without a running relay: the
/// queued messages (`queue/<ID>`, each with its recipients' delivery state
/// appended, `StateRecord`) and each upstream's health and quota usage
/// (`upstreams/<name>.json`). Used by the relay and by `relais queue`. Blocking.
public struct SpoolFolder: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    var queueFolder: String { root + "/queue" }
    var stateFolder: String { root + "/state" }
    var upstreamsFolder: String { root + "/upstreams" }

    public func path(of id: String) -> String { queueFolder + "/" + id }

    /// Where builds before state records kept a message's delivery state
    /// (`Spool.upgrade` moves it into the message's file).
    func legacyStatePath(of id: String) -> String { stateFolder + "/" + id }

    /// Where a message's file is written anew before it replaces the old one.
    func temporaryPath(of id: String) -> String { queueFolder + "/." + id }

    /// Ids of every message in the queue, oldest first.
    public func queuedIDs() throws -> [String] {
        try DurableFiles.listFolder(queueFolder).filter(QueueID.isValid)
    }

    /// A queued message: its envelope, content and delivery state, checked
    /// against the file's name and its seal (`SpoolSeal`).
    func load(_ id: String) throws -> SpoolEntry {
        try entry(id, in: try DurableFiles.readFile(path(of: id)))
    }

    /// The message a spool file's bytes hold, checked as `load` does.
    func entry(_ id: String, in file: ByteBuffer) throws -> SpoolEntry {
        let (envelope, seal, rest) = try Envelope.decode(spoolFile: file)
        try Self.check(envelope, named: id)
        guard let seal else { return SpoolEntry(envelope: envelope, content: rest, state: nil, records: 0, sealed: false) }
        let (content, tail) = try seal.split(rest)
        let records = StateRecord.read(tail, of: id)
        return SpoolEntry(envelope: envelope, content: content, state: records.state, records: records.records, sealed: true)
    }

    /// A message whose file's bytes are still held in memory as they were
    /// made (`UnwrittenFiles`): its envelope line and its content. Only the
    /// line is decoded; the content is the buffer the message arrived in,
    /// shared, not copied, and not checked against its CRC, which was made
    /// of these very bytes.
    func entry(_ id: String, line: ByteBuffer, content: ByteBuffer) throws -> SpoolEntry {
        let (envelope, seal, rest) = try Envelope.decode(spoolFile: line)
        try Self.check(envelope, named: id)
        guard rest.readableBytes == 0 else { throw SpoolFileError("spool file's envelope line has bytes after it") }
        try seal?.check(size: content.readableBytes)
        return SpoolEntry(envelope: envelope, content: content, state: nil, records: 0, sealed: seal != nil)
    }

    /// A queued message's envelope, content size and delivery state,
    /// without reading the content: what listing a long queue and resuming
    /// it need. Only the size is checked against the seal; the content is
    /// when it is loaded.
    func loadEnvelope(_ id: String) throws -> (envelope: Envelope, size: Int, state: MessageState?, sealed: Bool) {
        var decoded: (envelope: Envelope, seal: SpoolSeal?, headLength: Int)?
        let (_, fileSize, tail) = try DurableFiles.readHeadAndTail(path(of: id), through: UInt8(ascii: "\n")) { head, fileSize in
            let (envelope, seal, rest) = try Envelope.decode(spoolFile: head)
            try Self.check(envelope, named: id)
            let headLength = head.readableBytes - rest.readableBytes
            decoded = (envelope, seal, headLength)
            try seal?.check(sizeWithTail: fileSize - headLength)
            return seal.map { headLength + $0.contentSize }
        }
        guard let (envelope, seal, headLength) = decoded else { throw SpoolFileError("spool file has no envelope line") }
        guard let seal else { return (envelope, fileSize - headLength, nil, false) }
        return (envelope, seal.contentSize, StateRecord.read(tail, of: id).state, true)
    }

    private static func check(_ envelope: Envelope, named id: String) throws {
        guard envelope.id == id else { throw MisnamedSpoolFile(name: id, envelopeID: envelope.id) }
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
}

/// A spool file whose envelope names another message: a file given to a
/// new message (`RecycledFiles`) that a crash caught between its write and
/// its rename (the new message's bytes under the delivered one's name), or
/// after a power loss the other way round. Either way the message the file
/// is named after was delivered and the other never acknowledged: the
/// file holds nothing to deliver (`Spool.setAsideIfCorrupt` recycles it).
struct MisnamedSpoolFile: Error, CustomStringConvertible {
    let name: String
    let envelopeID: String

    var description: String {
        "spool file \(name) holds the envelope of \(envelopeID): a recycled file whose rename a crash stopped"
    }
}

/// A queued message as its spool file holds it (`SpoolFolder.load`).
struct SpoolEntry: Sendable {
    var envelope: Envelope
    var content: ByteBuffer
    /// Where its recipients stand: the last state record (`StateRecord`);
    /// nil when no attempt was saved yet.
    var state: MessageState?
    /// State records appended since the file was last written whole.
    var records: Int
    /// False for a file written before seals (and state records), which
    /// `Spool.upgrade` rewrites.
    var sealed: Bool
}
