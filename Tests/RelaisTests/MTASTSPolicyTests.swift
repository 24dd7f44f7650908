@testable import Relais
import Testing

/// RFC 8461 3.1-3.2 and 4.1: the TXT record, the policy file, MX matching.
struct MTASTSPolicyTests {
    @Test func policiesParse() throws {
        let policy = try #require(MTASTSPolicy(parsing: "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n"))
        #expect(policy.mode == .enforce && policy.maxAge == 604_800)
        #expect(policy.allows("MAIL.example.com") && policy.allows("a.example.net"))
        #expect(!policy.allows("a.b.example.net") && !policy.allows("example.net") && !policy.allows("mail.example.org"))
    }

    @Test(arguments: [
        "mode: enforce\nmx: a\nmax_age: 1\n",                       // no version
        "version: STSv2\nmode: enforce\nmx: a\nmax_age: 1\n",
        "version: STSv1\nmode: sometimes\nmx: a\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmax_age: 1\n",              // enforce without mx
        "version: STSv1\nmode: enforce\nmx: a\n",                   // no max_age
        "{\"not\": \"a policy\"}",
    ])
    func invalidPoliciesAreRefused(_ text: String) {
        #expect(MTASTSPolicy(parsing: text) == nil)
    }

    @Test func maxAgeIsCapped() throws {
        #expect(try #require(MTASTSPolicy(parsing: "version: STSv1\nmode: none\nmax_age: 99999999999\n")).maxAge == 31_557_600)
    }

    @Test func recordIDs() {
        #expect(MTASTSPolicy.recordID("v=STSv1; id=20160831085700Z;") == "20160831085700Z")
        #expect(MTASTSPolicy.recordID("v=STSv1;id=1") == "1")
        #expect(MTASTSPolicy.recordID("v=spf1 -all") == nil)
        #expect(MTASTSPolicy.recordID("v=STSv1;") == nil)
    }
}
