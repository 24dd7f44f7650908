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

/// The envelope line read in one pass as the envelope and the seal.
private struct SpoolFileHead: Decodable {
    var envelope: Envelope
    var seal: SpoolSeal?

    /// A line that opens with its routes (as `encodedLine` writes them)
    /// has them decoded once per distinct value (`RoutesJSONCache`), the
    /// rest of the line by `JSONDecoder`; any other line all by `JSONDecoder`.
    static func decode(_ line: ByteBuffer) throws -> SpoolFileHead {
        guard let (routes, rest) = try RoutesJSONCache.shared.routes(openingObject: line) else {
            return try JSONDecoder().decode(SpoolFileHead.self, from: Data(line.readableBytesView))
        }
        var head = try JSONDecoder().decode(SpoolFileHead.self, from: rest)
        head.envelope.routes = routes
        return head
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
