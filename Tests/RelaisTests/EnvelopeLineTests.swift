import Foundation
@testable import Relais
import NIOCore
import Testing

/// The spool file's first line: routes spliced in from the cache still
/// read back as the envelope that was written.
struct EnvelopeLineTests {
    private func envelope(routes: [[RouteTarget]]?) -> Envelope {
        var envelope = Envelope(id: "Q1", sender: "s@example.org", recipients: ["a@x.example", "b@y.example"], smtpUTF8: false,
                                body: nil, receivedAt: 1_796_000_000.5, clientIP: "127.0.0.1", helo: "client.example",
                                routes: routes)
        envelope.dkimForAll = ["s1._domainkey.example.org (rsa-sha256)"]
        return envelope
    }

    @Test func roundTripsWithAndWithoutRoutes() throws {
        var mx = MXTarget()
        mx.port = 2525
        let routes: [[RouteTarget]] = [[.mx(mx), .maildir(path: "mail")], [.maildir(path: "other")]]
        for original in [envelope(routes: routes), envelope(routes: routes), envelope(routes: nil)] {
            var file = try original.encodedLine()
            file.writeString("Subject: x\r\n\r\nbody\r\n")
            let (decoded, seal, content) = try Envelope.decode(spoolFile: file)
            #expect(seal == nil)
            #expect(decoded == original)
            #expect(String(buffer: content) == "Subject: x\r\n\r\nbody\r\n")
        }
    }

    /// Every field, with strings JSON must escape: the line written field by
    /// field reads back the same, and names exactly the fields Codable
    /// does (a field added to `Envelope` but not to the line fails here).
    @Test func everyFieldRoundTripsAndNoneIsMissing() throws {
        var full = envelope(routes: [[.maildir(path: "mail/\"quoted\"")]])
        full.sender = "\"odd \\ local\"@example.org"
        full.recipients = ["caf\u{E9}@example.com", "tab\there@example.com", "nul\u{0}@example.com"]
        full.body = "8BITMIME"
        full.smtpUTF8 = true
        full.refused = [RefusedRecipient(recipient: "r@example.com", reply: "550 5.1.1 \"no\"", dsn: RecipientDSN(notify: ["NEVER"]))]
        full.ret = "HDRS"
        full.envid = "id+2B/\u{7F}"
        full.recipientDSN = [RecipientDSN(notify: ["SUCCESS", "DELAY"], orcpt: "rfc822;a@x.example"), RecipientDSN(), RecipientDSN()]
        full.dkimSignatures = ["b": "DKIM-Signature: v=1; b=\r\n\tabc", "a": "x"]
        full.receivedAt = 1_796_000_000.123_456
        let line = try full.encodedLine()
        #expect(line.readableBytesView.last == UInt8(ascii: "\n"))
        #expect(line.readableBytesView.dropLast().allSatisfy { $0 != UInt8(ascii: "\n") })
        let (decoded, _, _) = try Envelope.decode(spoolFile: line)
        #expect(decoded == full)
        let written = try JSONSerialization.jsonObject(with: Data(line.readableBytesView)) as? [String: Any]
        let codable = try JSONSerialization.jsonObject(with: JSONEncoder().encode(full)) as? [String: Any]
        #expect(written.map { Set($0.keys) } == codable.map { Set($0.keys) })
    }

    /// Routes read back through the decoding cache: strings holding
    /// brackets, braces, quotes and backslashes do not end the routes early,
    /// and lines whose routes differ only inside such a string each read
    /// back their own, however often they are read.
    @Test func routesWithBracketsInStringsReadBackTheirOwnValue() throws {
        let paths = ["mail/]}\"[{", "mail/]}\"[{\\", "mail/\\\"],{\"x\":1}"]
        for _ in 0 ..< 3 {
            for path in paths {
                let original = envelope(routes: [[.maildir(path: path)], [.maildir(path: "b")]])
                var file = try original.encodedLine()
                file.writeString("body\r\n")
                let (decoded, _, content) = try Envelope.decode(spoolFile: file)
                #expect(decoded == original)
                #expect(String(buffer: content) == "body\r\n")
            }
        }
    }

    /// A line written by `JSONEncoder` (keys in another order, routes not
    /// first) still reads back; a line whose routes never close is an
    /// error, not a guess.
    @Test func linesThatDoNotOpenWithRoutesAndCutLines() throws {
        let original = envelope(routes: [[.maildir(path: "mail")]])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var file = ByteBuffer(bytes: try encoder.encode(original))
        file.writeString("\nbody")
        #expect(try Envelope.decode(spoolFile: file).0 == original)

        let line = try original.encodedLine()
        var cut = line.getSlice(at: 0, length: 30) ?? ByteBuffer()
        cut.writeString("\nbody")
        #expect(throws: (any Error).self) { try Envelope.decode(spoolFile: cut) }
    }
}
