/// Parses RFC 5321 paths and mailboxes, with the RFC 6531 extensions that let
/// UTF-8 into local parts and domains when the transaction uses SMTPUTF8.
///
/// Parsing is strict where laxness lets an address mean two things (unquoted
/// specials, control characters, over-long parts) and tolerant only of the
/// obsolete source route, which is parsed and dropped as RFC 5321 C requires.
public struct PathParser: Sendable {
    public var limits: SMTPLimits
    /// Allow UTF-8 outside ASCII (the transaction announced SMTPUTF8).
    public var allowUTF8: Bool

    public init(limits: SMTPLimits = SMTPLimits(), allowUTF8: Bool = true) {
        self.limits = limits
        self.allowUTF8 = allowUTF8
    }

    // Reverse-path = Path / "<>"
    public func reversePath(_ text: Substring) throws(SMTPSyntaxError) -> ReversePath {
        if text == "<>" { return .null }
        return .mailbox(try path(text, allowPostmaster: false))
    }

    // Forward-path = Path ; plus "<Postmaster>" (RFC 5321 4.1.1.3)
    public func forwardPath(_ text: Substring) throws(SMTPSyntaxError) -> MailboxAddress {
        try path(text, allowPostmaster: true)
    }

    // Path = "<" [ A-d-l ":" ] Mailbox ">"
    private func path(_ text: Substring, allowPostmaster: Bool) throws(SMTPSyntaxError) -> MailboxAddress {
        let bytes = text.utf8
        guard bytes.count <= limits.pathLength else { throw .syntax("path too long") }
        guard bytes.count >= 2, bytes.first == UInt8(ascii: "<"), bytes.last == UInt8(ascii: ">") else {
            throw .syntax("address must be in angle brackets")
        }
        var inner = bytes.dropFirst().dropLast()
        if inner.first == UInt8(ascii: "@") {
            guard let colon = inner.firstIndex(of: UInt8(ascii: ":")) else { throw .syntax("malformed source route") }
            inner = inner[inner.index(after: colon)...]
        }
        if allowPostmaster, inner.equalsIgnoringASCIICase("postmaster") {
            return MailboxAddress(localPart: String(Substring(inner)), domain: "")
        }
        return try mailbox(Substring(inner))
    }

    // Mailbox = Local-part "@" ( Domain / address-literal )
    public func mailbox(_ text: Substring) throws(SMTPSyntaxError) -> MailboxAddress {
        let bytes = text.utf8
        guard let at = bytes.lastIndex(of: UInt8(ascii: "@")) else { throw .syntax("address has no domain") }
        let local = bytes[..<at]
        let domain = bytes[bytes.index(after: at)...]
        try validateLocalPart(local)
        try validateDomainOrLiteral(domain)
        return MailboxAddress(localPart: String(Substring(local)), domain: String(Substring(domain)))
    }

    // The grammar below is over octets: every delimiter is ASCII, and each
    // byte of a UTF-8 sequence is 0x80 or above, so a byte at a time reads
    // it as a scalar at a time would, without decoding.

    // Local-part = Dot-string / Quoted-string
    private func validateLocalPart(_ local: Substring.UTF8View) throws(SMTPSyntaxError) {
        guard !local.isEmpty else { throw .syntax("empty local part") }
        guard local.count <= limits.localPartLength else { throw .syntax("local part too long") }
        if local.first == UInt8(ascii: "\"") {
            try validateQuotedString(local)
        } else {
            try validateDotString(local)
        }
    }

    // Dot-string = Atom *("." Atom)
    private func validateDotString(_ text: Substring.UTF8View) throws(SMTPSyntaxError) {
        try forEachPiece(of: text, separatedBy: UInt8(ascii: ".")) { atom throws(SMTPSyntaxError) in
            guard !atom.isEmpty else { throw .syntax("empty atom in local part") }
            for byte in atom where !isAtext(byte) {
                throw .syntax("character not allowed in local part")
            }
        }
    }

    /// Calls `body` with each piece of `text` between `separator` bytes,
    /// empty ones included: `split` without the array it would allocate
    /// for every address parsed.
    private func forEachPiece(of text: Substring.UTF8View, separatedBy separator: UInt8,
                              _ body: (Substring.UTF8View) throws(SMTPSyntaxError) -> Void) throws(SMTPSyntaxError) {
        var start = text.startIndex
        while true {
            let end = text[start...].firstIndex(of: separator) ?? text.endIndex
            try body(text[start ..< end])
            guard end < text.endIndex else { return }
            start = text.index(after: end)
        }
    }

    // Quoted-string = DQUOTE *QcontentSMTP DQUOTE
    // QcontentSMTP = qtextSMTP / quoted-pairSMTP ; quoted-pairSMTP = %d92 %d32-126
    private func validateQuotedString(_ text: Substring.UTF8View) throws(SMTPSyntaxError) {
        guard text.count >= 2, text.last == UInt8(ascii: "\"") else { throw .syntax("unterminated quoted local part") }
        var escaped = false
        for byte in text.dropFirst().dropLast() {
            if escaped {
                guard (32...126).contains(byte) else { throw .syntax("bad escape in quoted local part") }
                escaped = false
                continue
            }
            if byte == UInt8(ascii: "\\") {
                escaped = true
                continue
            }
            // qtextSMTP = %d32-33 / %d35-91 / %d93-126 / UTF8-non-ascii
            let isQtext = byte == 32 || byte == 33 || (35...91).contains(byte) || (93...126).contains(byte)
            guard isQtext || (allowUTF8 && byte >= 0x80) else {
                throw .syntax("character not allowed in quoted local part")
            }
        }
        // The closing quote cannot be the escaped character.
        guard !escaped else { throw .syntax("bad escape in quoted local part") }
    }

    // atext = ALPHA / DIGIT / "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "/" /
    //         "=" / "?" / "^" / "_" / "`" / "{" / "|" / "}" / "~" / UTF8-non-ascii
    private func isAtext(_ byte: UInt8) -> Bool {
        if byte >= 0x80 { return allowUTF8 }
        return byte.isASCIILetterOrDigit || "!#$%&'*+-/=?^_`{|}~".utf8.contains(byte)
    }

    private func validateDomainOrLiteral(_ domain: Substring.UTF8View) throws(SMTPSyntaxError) {
        guard !domain.isEmpty else { throw .syntax("empty domain") }
        guard domain.count <= limits.domainLength else { throw .syntax("domain too long") }
        if domain.first == UInt8(ascii: "[") {
            try validateAddressLiteral(Substring(domain))
        } else {
            try validateDomain(domain)
        }
    }

    // Domain = sub-domain *("." sub-domain) ; sub-domain = Let-dig [Ldh-str] / U-label
    private func validateDomain(_ domain: Substring.UTF8View) throws(SMTPSyntaxError) {
        try forEachPiece(of: domain, separatedBy: UInt8(ascii: ".")) { label throws(SMTPSyntaxError) in
            guard !label.isEmpty, label.count <= 63 else { throw .syntax("bad domain label") }
            guard label.first != UInt8(ascii: "-"), label.last != UInt8(ascii: "-") else {
                throw .syntax("domain label starts or ends with a hyphen")
            }
            for byte in label {
                let ok = byte.isASCIILetterOrDigit || byte == UInt8(ascii: "-") || (allowUTF8 && byte >= 0x80)
                guard ok else { throw .syntax("character not allowed in domain") }
            }
        }
    }

    // address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
    //                         General-address-literal ) "]"
    private func validateAddressLiteral(_ literal: Substring) throws(SMTPSyntaxError) {
        guard literal.last == "]", literal.count > 2 else { throw .syntax("unterminated address literal") }
        let inner = literal.dropFirst().dropLast()
        if inner.lowercased().hasPrefix("ipv6:") {
            guard IPAddressText.isIPv6(inner.dropFirst(5)) else { throw .syntax("bad IPv6 address literal") }
        } else if let colon = inner.firstIndex(of: ":") {
            // General-address-literal = Standardized-tag ":" 1*dcontent
            let tag = inner[..<colon]
            let content = inner[inner.index(after: colon)...]
            guard !tag.isEmpty, !content.isEmpty,
                  content.unicodeScalars.allSatisfy({ (33...90).contains($0.value) || (94...126).contains($0.value) })
            else { throw .syntax("bad address literal") }
        } else {
            guard IPAddressText.isIPv4(inner) else { throw .syntax("bad IPv4 address literal") }
        }
    }
}
