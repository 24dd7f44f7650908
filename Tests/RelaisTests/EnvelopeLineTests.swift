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
            let (decoded, content) = try Envelope.decode(spoolFile: file)
            #expect(decoded == original)
            #expect(String(buffer: content) == "Subject: x\r\n\r\nbody\r\n")
        }
    }
}
