import Foundation
import NIOCore
import RelaisTLS

/// One DKIM signing identity (RFC 6376, RFC 8463): domain, selector, key,
/// the header fields to sign and the canonicalization. A plain value made
/// from `relais.dkim{...}` at policy load; the key never leaves it.
public struct DKIMSigner: Sendable {
    public var domain: String
    public var selector: String
    public var key: SigningKey
    /// Header field names signed when present.
    public var headers: [String]
    /// Signed once more than present, so that no such field can be added
    /// after signing (oversigning).
    public var oversigned: Set<String>
    public var headerCanonicalization: DKIMCanonicalization = .relaxed
    public var bodyCanonicalization: DKIMCanonicalization = .relaxed

    /// From, To, Subject, Date, Message-ID and Reply-To are oversigned.
    public static let defaultOversigned = ["from", "to", "subject", "date", "message-id", "reply-to"]
    public static let defaultHeaders = defaultOversigned + [
        "cc", "mime-version", "content-type", "content-transfer-encoding", "in-reply-to", "references",
        "list-id", "list-unsubscribe", "list-unsubscribe-post", "feedback-id",
    ]

    /// Where the public key goes in DNS, and its record.
    public var dnsName: String { "\(selector)._domainkey.\(domain)" }

    /// `rsa-sha256` or `ed25519-sha256`.
    public var algorithm: String {
        if case .ed25519 = key.kind { return "ed25519-sha256" }
        return "rsa-sha256"
    }

    /// The TXT record to publish at `dnsName`.
    public var dnsRecord: String {
        "v=DKIM1; k=\(key.kind == .ed25519 ? "ed25519" : "rsa"); p=\(key.publicKeyBase64)"
    }

    /// The name `relais check` and the logs show (never the key).
    public var label: String { "\(dnsName) (\(algorithm))" }

    /// The `DKIM-Signature:` field (folded, ending in CRLF) for `message`
    /// (header section, empty line, body), signed at `time`.
    public func signature(for message: ByteBuffer, time: Int) throws -> String {
        let headers = MessageHeaders(parsing: message)
        var body = headers.rest
        if body.readableBytesView.starts(with: [13, 10]) { body.moveReaderIndex(forwardBy: 2) }
        let bodyHash = Data(SigningKey.sha256(bodyCanonicalization.body(body.readableBytesView))).base64EncodedString()
        var signed: [String] = []
        var input: [UInt8] = []
        var used: [String: Int] = [:]
        for name in headers.fields.map({ $0.name.lowercased() }) where headersToSign.contains(name) && used[name] == nil {
            let instances = headers.fields.filter { $0.name.lowercased() == name }
            used[name] = instances.count
            // Bottom-up, as verifiers select them (RFC 6376 5.4.2).
            for field in instances.reversed() {
                signed.append(name)
                input += headerCanonicalization.header(field.raw)
            }
        }
        for name in headers.fields.isEmpty ? [] : oversigned.sorted() where headersToSign.contains(name) {
            signed.append(name)
        }
        let tags = "v=1; a=\(algorithm); c=\(headerCanonicalization.rawValue)/\(bodyCanonicalization.rawValue); "
            + "d=\(domain); s=\(selector); t=\(time);\r\n\th=\(signed.joined(separator: ":"));\r\n\tbh=\(bodyHash);\r\n\tb="
        let unsigned = "DKIM-Signature: " + tags
        var canonical = headerCanonicalization.header(Array(unsigned.utf8) + [13, 10])
        canonical.removeLast(2)  // the signature field is hashed without its CRLF
        input += canonical
        let signature = Data(try key.sign(input)).base64EncodedString()
        return unsigned + Self.fold(signature) + "\r\n"
    }

    private var headersToSign: Set<String> { Set(headers).union(oversigned) }

    /// Base64 in lines of 72 characters, continued with a tab.
    private static func fold(_ text: String) -> String {
        var lines: [Substring] = []
        var rest = Substring(text)
        while rest.count > 72 {
            lines.append(rest.prefix(72))
            rest = rest.dropFirst(72)
        }
        lines.append(rest)
        return lines.joined(separator: "\r\n\t")
    }
}
