import NIOCore
import RelaisDNS
import Testing

/// The wire format, against answers built by hand from RFC 1035's layout.
struct DNSMessageTests {
    /// A response to `query` with `answers` (already encoded records).
    private func response(to query: [UInt8], code: UInt8 = 0, flags: UInt16 = 0x8180, answers: [[UInt8]],
                          authority: [[UInt8]] = []) -> [UInt8] {
        var bytes = Array(query[0..<2])
        let allFlags = flags | UInt16(code)
        bytes += [UInt8(allFlags >> 8), UInt8(allFlags & 0xFF), 0, 1, 0, UInt8(answers.count), 0, UInt8(authority.count), 0, 0]
        let questionEnd = query.count - 11  // the OPT record is 11 bytes
        bytes += query[12..<questionEnd]
        for record in answers + authority { bytes += record }
        return bytes
    }

    /// A record whose owner is the question name (a pointer to offset 12).
    private func record(type: UInt16, ttl: UInt32 = 300, _ data: [UInt8], owner: [UInt8] = [0xC0, 12]) -> [UInt8] {
        owner + [UInt8(type >> 8), UInt8(type & 0xFF), 0, 1,
                 UInt8(ttl >> 24), UInt8(ttl >> 16 & 0xFF), UInt8(ttl >> 8 & 0xFF), UInt8(ttl & 0xFF),
                 UInt8(data.count >> 8), UInt8(data.count & 0xFF)] + data
    }

    @Test func queryHasOneQuestionAndEDNS() throws {
        let query = try DNSMessage.query(id: 0x1234, name: "Example.ORG.", type: .mx)
        #expect(Array(query[0..<6]) == [0x12, 0x34, 0x01, 0x20, 0, 1])
        #expect(Array(query[12..<25]) == [7] + Array("Example".utf8) + [3] + Array("ORG".utf8) + [0])
        #expect(Array(query[25..<29]) == [0, 15, 0, 1])
        #expect(query.count == 29 + 11)
    }

    @Test(arguments: ["", "a..b", String(repeating: "x", count: 64) + ".org", "sp ace.org"])
    func badNamesAreRefused(_ name: String) {
        #expect(throws: DNSError.badName(name)) { try DNSMessage.query(id: 1, name: name, type: .a) }
    }

    @Test func answersDecodeByType() throws {
        let query = try DNSMessage.query(id: 7, name: "example.org", type: .mx)
        let mx = record(type: 15, [0, 10, 2] + Array("mx".utf8) + [0xC0, 12])
        let a = record(type: 1, ttl: 60, [192, 0, 2, 1])
        let aaaa = record(type: 28, [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1])
        let txt = record(type: 16, [5] + Array("hello".utf8) + [5] + Array("world".utf8))
        let tlsa = record(type: 52, [3, 1, 1, 0xAB, 0xCD])
        let message = try DNSMessage(parsing: response(to: query, flags: 0x81A0, answers: [mx, a, aaaa, txt, tlsa]))
        #expect(message.id == 7 && message.questionName == "example.org" && message.authenticated)
        #expect(message.answers.map(\.data) == [
            .mx(preference: 10, host: "mx.example.org"), .a("192.0.2.1"), .aaaa("2001:db8::1"),
            .txt([Array("hello".utf8), Array("world".utf8)]),
            .tlsa(usage: 3, selector: 1, matchingType: 1, data: [0xAB, 0xCD]),
        ])
        #expect(message.answers[1].ttl == 60)
    }

    @Test func nxdomainCarriesTheNegativeTTL() throws {
        let query = try DNSMessage.query(id: 9, name: "missing.example", type: .a)
        let soa = record(type: 6, ttl: 900, [0xC0, 12, 0xC0, 12] + Array(repeating: 0, count: 16) + [0, 0, 0, 30])
        let message = try DNSMessage(parsing: response(to: query, code: 3, answers: [], authority: [soa]))
        #expect(message.responseCode == 3)
        #expect(message.authority.map(\.data) == [.soa(minimum: 30)])
    }

    @Test func pointerLoopsAndTruncationAreMalformed() throws {
        let query = try DNSMessage.query(id: 9, name: "example.org", type: .a)
        var looping = response(to: query, answers: [record(type: 1, [1, 2, 3, 4], owner: [0xC0, 29])])
        looping[29] = 0xC0
        looping[30] = 29
        #expect(throws: DNSError.self) { try DNSMessage(parsing: looping) }
        let full = response(to: query, answers: [record(type: 1, [1, 2, 3, 4])])
        #expect(throws: DNSError.self) { try DNSMessage(parsing: Array(full.dropLast(2))) }
    }

    @Test func reverseNames() {
        #expect(ReverseName.of("192.0.2.10") == "10.2.0.192")
        #expect(ReverseName.pointer("192.0.2.10") == "10.2.0.192.in-addr.arpa")
        #expect(ReverseName.of("2001:db8::1") == "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2")
        #expect(ReverseName.pointer("::1")?.hasSuffix(".ip6.arpa") == true)
        #expect(ReverseName.of("not an address") == nil)
        #expect(ReverseName.of("1.2.3.256") == nil)
    }

    @Test func ipv6TextFollowsRFC5952() {
        #expect(IPv6Text.format([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]) == "2001:db8::1:0:0:1")
        #expect(IPv6Text.format(Array(repeating: 0, count: 15) + [1]) == "::1")
    }

    @Test func resolvConfServers() {
        #expect(ResolvConf.servers(in: "# c\nsearch x\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\n")
            == ["10.0.0.1:53", "[fe80::1]:53"])
        #expect(ResolvConf.servers(in: "") == ["127.0.0.1:53"])
    }

    @Test func cacheHonoursTTLs() {
        let cache = DNSCache(capacity: 2)
        let start = NIODeadline.now()
        let answer = DNSAnswer(records: [.a("192.0.2.1")], ttl: 60, authenticated: false)
        cache.store("A.Example.", .a, .success(answer), ttl: 60, now: start)
        cache.store("gone.example", .a, .failure(.nxdomain), ttl: 5, now: start)
        cache.store("never.example", .a, .failure(.nxdomain), ttl: 0, now: start)
        #expect(cache.lookup("a.example", .a, now: start + .seconds(59)) == .success(answer))
        #expect(cache.lookup("a.example", .mx, now: start) == nil)
        #expect(cache.lookup("gone.example", .a, now: start + .seconds(4)) == .failure(.nxdomain))
        #expect(cache.lookup("gone.example", .a, now: start + .seconds(6)) == nil)
        #expect(cache.lookup("never.example", .a, now: start) == nil)
        #expect(cache.lookup("a.example", .a, now: start + .seconds(61)) == nil)
    }
}
