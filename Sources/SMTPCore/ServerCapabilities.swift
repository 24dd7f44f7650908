/// What an ESMTP server offers, read from the lines of its EHLO reply after
/// the greeting line (RFC 5321 4.1.1.1):
///
/// ```
/// ehlo-line    = ehlo-keyword *( SP ehlo-param )
/// ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
/// ```
/// Keywords are compared without case; a server that answered only HELO
/// offers nothing.
public struct ServerCapabilities: Sendable, Equatable {
    /// Each keyword (upper-cased) and its parameters as one string.
    public private(set) var keywords: [String: String] = [:]

    public init() {}

    public init(ehloReply reply: SMTPReply) {
        for line in reply.lines.dropFirst() {
            let words = line.split(separator: " ", maxSplits: 1)
            guard let keyword = words.first else { continue }
            keywords[keyword.uppercased()] = words.count > 1 ? String(words[1]) : ""
        }
    }

    /// Whether the server offers `keyword`, in any case (one already in
    /// upper case is looked up as it is).
    public func offers(_ keyword: String) -> Bool {
        let upperCase = keyword.utf8.allSatisfy { $0 < 0x80 && !(UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) }
        return keywords[upperCase ? keyword : keyword.uppercased()] != nil
    }

    /// RFC 1870: the largest message the server takes; nil when it gives
    /// no limit (`SIZE` absent, or `SIZE 0`).
    public var sizeLimit: Int? {
        keywords["SIZE"].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil }
    }

    /// RFC 4954: the SASL mechanisms offered after `AUTH`, upper-cased.
    public var authMechanisms: Set<String> {
        Set((keywords["AUTH"] ?? "").uppercased().split(separator: " ").map(String.init))
    }
}
