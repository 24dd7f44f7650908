@testable import Relais
import RelaisDNS
import RelaisTLS
import Testing

/// RFC 7672 2.2 and RFC 8461 4 as a table: the host's TLSA answer and the
/// domain's enforced MTA-STS policy in, how the connection is protected out.
struct MXHostSecurityTests {
    private let eeRecord = DNSRecordData.tlsa(usage: 3, selector: 1, matchingType: 1, data: [1, 2, 3])
    private let pkixRecord = DNSRecordData.tlsa(usage: 1, selector: 1, matchingType: 1, data: [4, 5, 6])
    private let enforced = MTASTSPolicy(parsing: "version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 86400\n")

    private func tlsa(_ records: [DNSRecordData], validated: Bool = true) -> Result<DNSAnswer, DNSError> {
        .success(DNSAnswer(records: records, ttl: 300, authenticated: validated))
    }

    @Test func validatedUsableRecordsMeanDANE() {
        #expect(MXHostSecurity.decide(host: "mx.example.org", tlsa: tlsa([eeRecord, pkixRecord]), enforced: nil)
            == .dane([TLSARecord(usage: 3, selector: 1, matchingType: 1, data: [1, 2, 3])]))
    }

    @Test func validatedRecordsNoneUsableMeanEncryptionWithoutAuthentication() {
        #expect(MXHostSecurity.decide(host: "mx.example.org", tlsa: tlsa([pkixRecord]), enforced: nil) == .encryptedOnly)
    }

    @Test func unvalidatedOrAbsentRecordsLeaveTheConfiguredTLS() {
        #expect(MXHostSecurity.decide(host: "mx.example.org", tlsa: tlsa([eeRecord], validated: false), enforced: nil) == .configured)
        #expect(MXHostSecurity.decide(host: "mx.example.org", tlsa: tlsa([]), enforced: nil) == .configured)
        #expect(MXHostSecurity.decide(host: "mx.example.org", tlsa: .failure(.nxdomain), enforced: nil) == .configured)
        #expect(MXHostSecurity.decide(host: "mx.example.org", tlsa: nil, enforced: nil) == .configured)
    }

    @Test func aFailedLookupMakesTheHostUnusable() {
        #expect(MXHostSecurity.decide(host: "mx.example.org", tlsa: .failure(.servfail), enforced: nil)
            == .unusable("mx.example.org: TLSA lookup failed (SERVFAIL); DANE forbids using the host"))
    }

    @Test func daneWinsOverMTASTS() {
        #expect(MXHostSecurity.decide(host: "other.example.org", tlsa: tlsa([eeRecord]), enforced: enforced)
            == .dane([TLSARecord(usage: 3, selector: 1, matchingType: 1, data: [1, 2, 3])]))
        #expect(MXHostSecurity.decide(host: "mx.example.org", tlsa: nil, enforced: enforced) == .verifiedName)
        #expect(MXHostSecurity.decide(host: "other.example.org", tlsa: nil, enforced: enforced) == .outsidePolicy)
    }
}
