import CSystemShims
import Foundation
import NIOCore

/// A message's delivery state as one line appended to its spool file, after
/// the content: `state <CRC-32C> <JSON>`. Saving the state after an attempt
/// is one append to a file the message already has (no file of its own to
/// create, rename and later delete), made durable by the spool's shared
/// flush; the last whole record is the state.
///
/// Each record starts on a line of its own and the JSON never holds a
/// newline, so a record an interrupted append cut short spoils only its own
/// line. Its CRC-32C covers the message id too: a recycled file's old
/// records, should a crash leave them behind a new message, are not taken
/// for the new message's.
enum StateRecord {
    private static let prefix = Array("state ".utf8)

    /// The record of `state`, ready to append to the file of message `id`.
    static func encode(_ state: MessageState, of id: String) throws -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = try encoder.encode(state)
        var record = ByteBuffer()
        record.reserveCapacity(json.count + 16)
        record.writeStaticString("\n")
        record.writeBytes(prefix)
        record.writeString(hex(checksum(json, of: id)))
        record.writeStaticString(" ")
        record.writeBytes(json)
        record.writeStaticString("\n")
        return record
    }

    /// What follows a message's content in its file, read back.
    struct Tail: Equatable {
        /// The last whole record's state; nil when there is none.
        var state: MessageState?
        /// Lines the tail holds, whole or not: how many appends the file
        /// has taken since it was last written whole.
        var records: Int
    }

    /// Reads `tail`, the bytes after the content of message `id`'s file.
    static func read(_ tail: ByteBuffer, of id: String) -> Tail {
        let lines = tail.readableBytesView.split(separator: UInt8(ascii: "\n"))
        for line in lines.reversed() {
            if let state = decode(line, of: id) { return Tail(state: state, records: lines.count) }
        }
        return Tail(state: nil, records: lines.count)
    }

    private static func decode(_ line: ByteBufferView.SubSequence, of id: String) -> MessageState? {
        guard line.starts(with: prefix) else { return nil }
        let crcStart = line.index(line.startIndex, offsetBy: prefix.count)
        guard line.distance(from: crcStart, to: line.endIndex) > 9,
              let crc = UInt32(String(decoding: line[crcStart ..< crcStart + 8], as: UTF8.self), radix: 16),
              line[crcStart + 8] == UInt8(ascii: " ")
        else { return nil }
        let json = Data(line[(crcStart + 9)...])
        guard checksum(json, of: id) == crc else { return nil }
        return (try? json.withUnsafeBytes { try JSONReader.read($0) { try MessageState(reading: &$0) } })
            ?? (try? JSONDecoder().decode(MessageState.self, from: json))
    }

    private static func checksum(_ json: Data, of id: String) -> UInt32 {
        let idCRC = Array(id.utf8).withUnsafeBytes { relais_crc32c(0, $0.baseAddress, $0.count) }
        return json.withUnsafeBytes { relais_crc32c(idCRC, $0.baseAddress, $0.count) }
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }
}

extension MessageState {
    /// The fields that `Decodable` decodes, read by `JSONReader` the same
    /// way; at any other field it throws, and `StateRecord` falls back to
    /// `JSONDecoder`.
    init(reading reader: inout JSONReader) throws {
        var recipients: [Recipient]?
        var bounced: Bool?
        try reader.readObject { reader, name in
            switch name {
            case "recipients":
                var list: [Recipient] = []
                try reader.readArray { list.append(try Recipient(reading: &$0)) }
                recipients = list
            case "bounced": bounced = try reader.readBool()
            default: throw JSONReader.Unreadable()
            }
        }
        guard let recipients, let bounced else { throw JSONReader.Unreadable() }
        self.recipients = recipients
        self.bounced = bounced
    }
}

extension MessageState.Recipient {
    fileprivate init(reading reader: inout JSONReader) throws {
        var address: String?
        var status: Status?
        var attempts: Int?
        var nextAttempt: Double?
        var recipient = MessageState.Recipient(address: "")
        try reader.readObject { reader, name in
            switch name {
            case "address": address = try reader.readString()
            case "status": status = Status(rawValue: try reader.readString())
            case "attempts": attempts = try reader.readInt()
            case "nextAttempt": nextAttempt = try reader.readDouble()
            case "lastResult": recipient.lastResult = try reader.readOptional { try $0.readString() }
            case "lastTarget": recipient.lastTarget = try reader.readOptional { try $0.readString() }
            case "successNotice": recipient.successNotice = try reader.readOptional { try $0.readString() }
            case "delayNoticed": recipient.delayNoticed = try reader.readOptional { try $0.readBool() }
            default: throw JSONReader.Unreadable()
            }
        }
        guard let address, let status, let attempts, let nextAttempt else { throw JSONReader.Unreadable() }
        recipient.address = address
        recipient.status = status
        recipient.attempts = attempts
        recipient.nextAttempt = nextAttempt
        self = recipient
    }
}
