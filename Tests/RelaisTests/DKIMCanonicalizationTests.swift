import Foundation
@testable import Relais
import RelaisTLS
import Testing

/// RFC 6376 section 3.4.6's example, and the empty-body hashes verifiers expect.
struct DKIMCanonicalizationTests {
    @Test func relaxedHeadersFollowTheRFCExample() {
        #expect(DKIMCanonicalization.relaxed.header(Array("A: X\r\n".utf8)) == Array("a:X\r\n".utf8))
        #expect(DKIMCanonicalization.relaxed.header(Array("B : Y\t\r\n\tZ  \r\n".utf8)) == Array("b:Y Z\r\n".utf8))
        #expect(DKIMCanonicalization.simple.header(Array("B : Y\t\r\n\tZ  \r\n".utf8)) == Array("B : Y\t\r\n\tZ  \r\n".utf8))
    }

    @Test func bodiesFollowTheRFCExample() {
        let body = Array(" C \r\nD \t E\r\n\r\n\r\n".utf8)
        #expect(DKIMCanonicalization.relaxed.body(body) == Array(" C\r\nD E\r\n".utf8))
        #expect(DKIMCanonicalization.simple.body(body) == Array(" C \r\nD \t E\r\n".utf8))
        #expect(DKIMCanonicalization.relaxed.body(Array("no final line end".utf8)) == Array("no final line end\r\n".utf8))
    }

    @Test func emptyBodies() {
        let relaxed = Data(SigningKey.sha256(DKIMCanonicalization.relaxed.body([UInt8]()))).base64EncodedString()
        let simple = Data(SigningKey.sha256(DKIMCanonicalization.simple.body(Array("\r\n\r\n".utf8)))).base64EncodedString()
        #expect(relaxed == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
        #expect(simple == "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=")
    }
}
