@testable import Relais
import RelaisDNS
import Testing

/// RFC 5321 5.1 and RFC 7505 as a table: answers in, plan out.
struct MXPlanTests {
    private func answer(_ records: [(UInt16, String)]) -> Result<DNSAnswer, DNSError> {
        .success(DNSAnswer(records: records.map { .mx(preference: $0.0, host: $0.1) }, ttl: 60, authenticated: false))
    }

    @Test func preferenceOrderWithTiesShuffled() {
        let plan = MXPlan.plan(for: "example.org", answer([(20, "c"), (10, "a"), (10, "b"), (30, "d")]),
                               shuffle: { $0.reversed() })
        #expect(plan == .hosts(["b", "a", "c", "d"]))
    }

    @Test func noMXMeansTheDomainItself() {
        #expect(MXPlan.plan(for: "example.org", answer([])) == .hosts(["example.org"]))
    }

    @Test func nullMXAndMissingDomainsAreFinal() {
        #expect(MXPlan.plan(for: "example.org", answer([(0, "")]))
            == .permanent("556 5.1.10 example.org accepts no mail (null MX, RFC 7505)"))
        #expect(MXPlan.plan(for: "example.org", .failure(.nxdomain)) == .permanent("550 5.1.2 example.org: no such domain (NXDOMAIN)"))
        // A null MX beside real ones is ignored (RFC 7505 3: it must stand alone).
        #expect(MXPlan.plan(for: "example.org", answer([(0, ""), (10, "mx")])) == .hosts(["mx"]))
    }

    @Test func lookupFailuresAreTemporary() {
        #expect(MXPlan.plan(for: "example.org", .failure(.servfail)) == .temporary("451 4.4.3 example.org: MX lookup failed (SERVFAIL)"))
        #expect(MXPlan.plan(for: "example.org", .failure(.timeout)) == .temporary("451 4.4.3 example.org: MX lookup failed (timeout)"))
    }
}
