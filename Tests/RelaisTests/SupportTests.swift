@testable import Relais
import NIOCore
import Testing

struct IPNetworkTests {
    static let cases: [(String, String, Bool)] = [
        ("127.0.0.0/8", "127.0.0.1", true),
        ("127.0.0.0/8", "128.0.0.1", false),
        ("192.0.2.0/24", "192.0.2.255", true),
        ("192.0.2.0/25", "192.0.2.128", false),
        ("0.0.0.0/0", "203.0.113.9", true),
        ("::1/128", "::1", true),
        ("::1/128", "::2", false),
        ("2001:db8::/32", "2001:db8:ffff::1", true),
        ("2001:db8::/32", "2001:db9::1", false),
        ("192.0.2.0/24", "::ffff:192.0.2.7", true),
        ("192.0.2.0/24", "2001:db8::1", false),
        ("10.0.0.0/8", "not an ip", false),
    ]

    @Test(arguments: cases)
    func matches(_ cidr: String, _ ip: String, _ expected: Bool) throws {
        let network = try #require(IPNetwork(cidr: cidr))
        #expect(network.contains(ip) == expected)
    }

    @Test(arguments: ["10.0.0.0/33", "::/129", "10.0.0/8", "example.com/8", "10.0.0.0/x"])
    func refusesBadCIDR(_ text: String) {
        #expect(IPNetwork(cidr: text) == nil)
    }
}

struct HeaderSectionTests {
    @Test func countsFieldsOnlyInTheHeaderSection() {
        let message = ByteBuffer(string: "Received: a\r\nreceived: b\r\n\tfolded\r\nSubject: x\r\n\r\nReceived: in body\r\n")
        #expect(HeaderSection.count(of: "Received", in: message, from: 0) == 2)
        #expect(HeaderSection.count(of: "Subject", in: message, from: 0) == 1)
        #expect(HeaderSection.count(of: "X-None", in: message, from: 0) == 0)
    }
}

struct ReceivedHeaderTests {
    @Test func formatsTraceHeader() {
        let header = ReceivedHeader(helo: "client(evil)\u{1}", clientIP: "192.0.2.1", hostname: "relay.test",
                                    protocolName: "ESMTP", queueID: "ABC", recipient: "b@example.com",
                                    time: 1_795_958_484)
        #expect(header.text == "Received: from client?evil?? ([192.0.2.1])\r\n\tby relay.test (Relais) with ESMTP id ABC\r\n"
            + "\tfor <b@example.com>; Sun, 29 Nov 2026 13:21:24 +0000\r\n")
    }

    /// The last second's date is kept for the next message: a different second is formatted anew.
    @Test func datesOfSuccessiveSecondsDiffer() {
        #expect(ReceivedHeader.rfc5322Date(1_795_958_484) == "Sun, 29 Nov 2026 13:21:24 +0000")
        #expect(ReceivedHeader.rfc5322Date(1_795_958_484) == "Sun, 29 Nov 2026 13:21:24 +0000")
        #expect(ReceivedHeader.rfc5322Date(1_795_958_485) == "Sun, 29 Nov 2026 13:21:25 +0000")
        #expect(ReceivedHeader.rfc5322Date(1_767_225_599) == "Wed, 31 Dec 2025 23:59:59 +0000")
    }
}

struct QueueIDTests {
    @Test func idsAreUniqueAndSafe() {
        let ids = (0..<1000).map { _ in QueueID.make() }
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy(QueueID.isValid))
        #expect(!QueueID.isValid("../etc"))
    }
}
