import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// The envelope of a queued message, stored as the first line of its spool
/// file (JSON, so a person can read it with `head -1`).
public struct Envelope: Codable, Sendable, Equatable {
    public var id: String
    /// The reverse path without brackets; empty for the null sender.
    public var sender: String
    public var recipients: [String]
    public var smtpUTF8: Bool
    /// `7BIT` or `8BITMIME` as declared at MAIL, nil when not declared.
    public var body: String?
    /// Seconds since 1970 when the message was accepted.
    public var receivedAt: Double
    public var clientIP: String
    public var helo: String
    /// For each recipient, in the same order, the targets the route hook
    /// chose (failover order); nil in files written before routing existed.
    public var routes: [[RouteTarget]]?
    /// Recipients the route hook refused after DATA, for the bounce.
    public var refused: [RefusedRecipient]?
    /// RFC 3461: RET (FULL or HDRS) and ENVID from MAIL.
    public var ret: String?
    public var envid: String?
    /// RFC 3461 NOTIFY/ORCPT of each recipient, in the same order; nil when
    /// no recipient gave any.
    public var recipientDSN: [RecipientDSN]?
    /// `DKIM-Signature:` fields made at acceptance, by signer label: a
    /// retry sends the same signature.
    public var dkimSignatures: [String: String]?
    /// Signers (`msg:dkim_sign`) whose signature goes to every target.
    public var dkimForAll: [String]?

    public init(id: String, sender: String, recipients: [String], smtpUTF8: Bool, body: String?,
                receivedAt: Double, clientIP: String, helo: String, routes: [[RouteTarget]]? = nil,
                refused: [RefusedRecipient]? = nil) {
        self.id = id
        self.sender = sender
        self.recipients = recipients
        self.smtpUTF8 = smtpUTF8
        self.body = body
        self.receivedAt = receivedAt
        self.clientIP = clientIP
        self.helo = helo
        self.routes = routes
        self.refused = refused?.isEmpty == true ? nil : refused
    }
}

extension Envelope {
    /// True when some recipient leaves over SMTP (a smarthost, its MX
    /// hosts), or asked for a success notification: the relay queue handles those.
    var needsRelay: Bool {
        let remote = routes?.contains { targets in targets.contains { if case .maildir = $0 { false } else { true } } }
        return remote == true || (recipientDSN?.contains { $0.wantsSuccess } ?? false)
    }

    /// The route stored for the recipient at `index`; nil when the message
    /// predates stored routes (the default route applies).
    func route(_ index: Int) -> [RouteTarget]? {
        routes.flatMap { index < $0.count ? $0[index] : nil }
    }

    /// The DSN wishes of the recipient at `index`.
    func dsn(_ index: Int) -> RecipientDSN {
        recipientDSN.flatMap { index < $0.count ? $0[index] : nil } ?? RecipientDSN()
    }

    /// The DSN wishes of each of `recipients`, by address.
    func dsn(for recipients: [String]) -> [String: RecipientDSN] {
        var wishes: [String: RecipientDSN] = [:]
        for (index, address) in self.recipients.enumerated() where recipients.contains(address) {
            wishes[address] = dsn(index)
        }
        return wishes
    }
}

/// A recipient that failed, and the reply or reason that said so.
public struct RefusedRecipient: Codable, Sendable, Equatable {
    public var recipient: String
    public var reply: String
    public var dsn: RecipientDSN?
    /// `failed`, or for success notifications `delivered` / `relayed` (RFC 3464 2.3.3).
    public var action: String?
}

// MARK: - Encoding

extension Envelope {
    /// The JSON line that opens a spool file, the fields that `Decodable`
    /// reads back, and the `seal` of the content that follows when given.
    /// The routes come first, encoded once per distinct value
    /// (`RoutesJSONCache`): their smarthost settings are most of the line,
    /// and most messages share them.
    func encodedLine(seal: SpoolSeal? = nil) throws -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var line = JSONObjectWriter(capacity: 512)
        if let routes { line.field("routes", json: try RoutesJSONCache.shared.json(routes, encoder: encoder)) }
        line.field("id", id)
        line.field("sender", sender)
        line.field("recipients", recipients)
        line.field("smtpUTF8", smtpUTF8)
        line.field("body", body)
        line.field("receivedAt", receivedAt)
        line.field("clientIP", clientIP)
        line.field("helo", helo)
        try line.field("refused", refused, encoder: encoder)
        line.field("ret", ret)
        line.field("envid", envid)
        try line.field("recipientDSN", recipientDSN, encoder: encoder)
        line.field("dkimSignatures", dkimSignatures)
        line.field("dkimForAll", dkimForAll)
        if let seal {
            line.field(SpoolSeal.CodingKeys.contentSize.rawValue, seal.contentSize)
            line.field(SpoolSeal.CodingKeys.contentCRC32C.rawValue, Int(seal.contentCRC32C))
        }
        var buffer = line.finish()
        buffer.writeStaticString("\n")
        return buffer
    }

    /// Splits a spool file into its envelope, its seal (nil in files
    /// written before seals) and the message content. Checks nothing: see
    /// `SpoolFolder.load` for that.
    static func decode(spoolFile: ByteBuffer) throws -> (Envelope, SpoolSeal?, ByteBuffer) {
        guard let newline = spoolFile.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            throw SpoolFileError("spool file has no envelope line")
        }
        var file = spoolFile
        guard let line = file.readSlice(length: newline - file.readerIndex) else {
            throw SpoolFileError("spool file is truncated")
        }
        file.moveReaderIndex(forwardBy: 1)
        let head = try SpoolFileHead.decode(line)
        return (head.envelope, head.seal, file)
    }
}

/// A spool file's envelope line read in one pass as the envelope and the
/// seal, by `JSONReader` when it can (reading a backlog back reads one per
/// message), else by `JSONDecoder`.
struct SpoolFileHead: Decodable {
    var envelope: Envelope
    var seal: SpoolSeal?

    /// Read by `JSONReader`, the routes decoded once per distinct value
    /// (`RoutesJSONCache`); a line it cannot read (`JSONReader.Unreadable`:
    /// not as `encodedLine` writes) all by `JSONDecoder`, which reads such
    /// a line the same way or throws the error that says what is wrong.
    static func decode(_ line: ByteBuffer) throws -> SpoolFileHead {
        if let head = try? read(line) { return head }
        return try JSONDecoder().decode(SpoolFileHead.self, from: Data(line.readableBytesView))
    }

    /// The line read by `JSONReader` alone; throws `JSONReader.Unreadable`
    /// at what only `JSONDecoder` reads (or no decoder does).
    static func read(_ line: ByteBuffer) throws -> SpoolFileHead {
        try line.withUnsafeReadableBytes { try JSONReader.read($0) { try SpoolFileHead(reading: &$0) } }
    }

    /// The fields that `init(from:)` decodes, read the same way: the
    /// required ones must all be there and null is nil. Any other field is
    /// left to `JSONDecoder`, so none this reader lacks is ever dropped.
    private init(reading reader: inout JSONReader) throws {
        var envelope = Envelope(id: "", sender: "", recipients: [], smtpUTF8: false, body: nil, receivedAt: 0, clientIP: "", helo: "")
        var required = 0
        var contentSize: Int?
        var contentCRC32C: Int?
        try reader.readObject { reader, name in
            switch name {
            case "id": envelope.id = try reader.readString(); required += 1
            case "sender": envelope.sender = try reader.readString(); required += 1
            case "recipients": envelope.recipients = try reader.readStrings(); required += 1
            case "smtpUTF8": envelope.smtpUTF8 = try reader.readBool(); required += 1
            case "receivedAt": envelope.receivedAt = try reader.readDouble(); required += 1
            case "clientIP": envelope.clientIP = try reader.readString(); required += 1
            case "helo": envelope.helo = try reader.readString(); required += 1
            case "body": envelope.body = try reader.readOptional { try $0.readString() }
            case "ret": envelope.ret = try reader.readOptional { try $0.readString() }
            case "envid": envelope.envid = try reader.readOptional { try $0.readString() }
            case "dkimForAll": envelope.dkimForAll = try reader.readOptional { try $0.readStrings() }
            case "dkimSignatures":
                envelope.dkimSignatures = try reader.readOptional { reader in
                    var signatures: [String: String] = [:]
                    try reader.readObject { reader, label in signatures[label] = try reader.readString() }
                    return signatures
                }
            case "routes": envelope.routes = try reader.readOptional { try RoutesJSONCache.shared.routes(json: Data($0.readRawContainer())) }
            case "refused": envelope.refused = try reader.readOptional { try Self.decoded([RefusedRecipient].self, $0.readRawContainer()) }
            case "recipientDSN": envelope.recipientDSN = try reader.readOptional { try Self.decoded([RecipientDSN].self, $0.readRawContainer()) }
            case SpoolSeal.CodingKeys.contentSize.rawValue: contentSize = try reader.readOptional { try $0.readInt() }
            case SpoolSeal.CodingKeys.contentCRC32C.rawValue: contentCRC32C = try reader.readOptional { try $0.readInt() }
            default: throw JSONReader.Unreadable()
            }
        }
        guard required == 7 else { throw JSONReader.Unreadable() }
        self.envelope = envelope
        if let contentSize, let contentCRC32C {
            guard let crc = UInt32(exactly: contentCRC32C) else { throw JSONReader.Unreadable() }
            seal = SpoolSeal(contentSize: contentSize, contentCRC32C: crc)
        }
    }

    private static func decoded<Value: Decodable>(_ type: Value.Type, _ json: UnsafeRawBufferPointer) throws -> Value {
        try JSONDecoder().decode(type, from: Data(json))
    }

    init(from decoder: any Decoder) throws {
        envelope = try Envelope(from: decoder)
        let container = try decoder.container(keyedBy: SpoolSeal.CodingKeys.self)
        if let size = try container.decodeIfPresent(Int.self, forKey: .contentSize),
           let crc = try container.decodeIfPresent(UInt32.self, forKey: .contentCRC32C) {
            seal = SpoolSeal(contentSize: size, contentCRC32C: crc)
        }
    }
}

/// A spool file that cannot be read back as envelope and message; the file is
/// moved aside, never deleted.
struct SpoolFileError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
