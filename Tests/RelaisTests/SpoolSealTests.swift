import CSystemShims
import Foundation
import NIOCore
import NIOPosix
@testable import Relais
import Testing

/// A message's spool file is named before the flush that makes it durable;
/// its seal is what tells a whole file from one a crash interrupted.
struct SpoolSealTests {
    private let content = ByteBuffer(string: "Subject: sealed\r\n\r\n" + String(repeating: "body line\r\n", count: 300))

    /// Stores messages through a real spool on a thread pool, then hands its folder to `body`.
    private func withSpool(_ ids: [String], _ body: (SpoolFolder) throws -> Void) throws {
        try withTemporarySpool(threads: 2) { spool, loop, _ in
            try storeWithFiles(ids, content: content, in: spool, on: loop)
            try body(spool.folder)
        }
    }

    @Test func checksumIsCRC32C() {
        // The check value of CRC-32C (RFC 3720 B.4, "123456789").
        #expect(SpoolSeal(of: ByteBuffer(string: "123456789")).contentCRC32C == 0xE306_9283)
        #expect(SpoolSeal(of: ByteBuffer()).contentCRC32C == 0)
        // 32 zero bytes, 32 bytes of 0xFF: through the eight-byte steps.
        #expect(SpoolSeal(of: ByteBuffer(bytes: [UInt8](repeating: 0, count: 32))).contentCRC32C == 0x8A91_36AA)
        #expect(SpoolSeal(of: ByteBuffer(bytes: [UInt8](repeating: 0xFF, count: 32))).contentCRC32C == 0x62A8_AB43)
    }

    /// Content from 4 KiB on is checked in three lanes whose CRCs are then
    /// joined: the result is the plain CRC-32C at every length, and when
    /// continuing from an earlier piece's CRC (the journal's records).
    @Test(arguments: [4095, 4096, 4097, 4103, 12_345, 102_400, 262_147])
    func longContentHasTheBytewiseCRC(length: Int) {
        let bytes = (0..<length).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
        #expect(SpoolSeal(of: ByteBuffer(bytes: bytes)).contentCRC32C == Self.bytewiseCRC32C(bytes))
        let head = Array(bytes.prefix(5))
        let continued = bytes.withUnsafeBytes { relais_crc32c(Self.bytewiseCRC32C(head), $0.baseAddress, length) }
        #expect(continued == Self.bytewiseCRC32C(head + bytes))
    }

    private static func bytewiseCRC32C(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (0x82F6_3B78 & (0 &- (crc & 1))) }
        }
        return ~crc
    }

    @Test func aWholeFileReadsBackAsWritten() throws {
        try withSpool(["SEAL00000001"]) { folder in
            let entry = try folder.load("SEAL00000001")
            #expect(entry.envelope == testEnvelope("SEAL00000001"))
            #expect(entry.content == content)
            #expect(try folder.loadEnvelope("SEAL00000001").size == content.readableBytes)
            let line = try String(contentsOfFile: folder.path(of: "SEAL00000001"), encoding: .utf8).split(separator: "\n")[0]
            #expect(line.contains("\"contentSize\":\(content.readableBytes)"))
        }
    }

    @Test func aFileCutShortIsRefused() throws {
        try withSpool(["SEAL00000002"]) { folder in
            let path = folder.path(of: "SEAL00000002")
            let size = try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
            #expect(truncate(path, off_t(size - 7)) == 0)
            #expect(throws: SpoolFileError.self) { try folder.load("SEAL00000002") }
            #expect(throws: SpoolFileError.self) { try folder.loadEnvelope("SEAL00000002") }
        }
    }

    @Test func aChangedByteIsRefused() throws {
        try withSpool(["SEAL00000003"]) { folder in
            let path = folder.path(of: "SEAL00000003")
            var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            bytes[bytes.count - 5] ^= 0x20
            try bytes.write(to: URL(fileURLWithPath: path))
            #expect(throws: SpoolFileError.self) { try folder.load("SEAL00000003") }
            // The size still matches: listing the queue reads the envelope.
            #expect(try folder.loadEnvelope("SEAL00000003").envelope.id == "SEAL00000003")
        }
    }

    @Test func aFileHoldingAnotherMessagesEnvelopeIsRefused() throws {
        try withSpool(["SEAL00000004", "SEAL00000005"]) { folder in
            // What a recycled file looks like when the crash came before any new byte reached it.
            #expect(rename(folder.path(of: "SEAL00000004"), folder.path(of: "SEAL00000005")) == 0)
            #expect(throws: MisnamedSpoolFile.self) { try folder.load("SEAL00000005") }
            #expect(throws: MisnamedSpoolFile.self) { try folder.loadEnvelope("SEAL00000005") }
        }
    }

    @Test func aFileWrittenBeforeSealsStillReads() throws {
        try withSpool([]) { folder in
            var file = try testEnvelope("SEAL00000006").encodedLine()
            file.writeImmutableBuffer(content)
            try Data(file.readableBytesView).write(to: URL(fileURLWithPath: folder.path(of: "SEAL00000006")))
            #expect(try folder.load("SEAL00000006").content == content)
        }
    }
}
