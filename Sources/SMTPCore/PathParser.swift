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
        guard text.utf8.count <= limits.pathLength else { throw .syntax("path too long") }
        guard text.first == "<", text.last == ">", text.count >= 2 else {
            throw .syntax("address must be in angle brackets")
        }
        var inner = text.dropFirst().dropLast()
        if inner.first == "@" {
            guard let colon = inner.firstIndex(of: ":") else { throw .syntax("malformed source route") }
            inner = inner[inner.index(after: colon)...]
        }
        if allowPostmaster, inner.lowercased() == "postmaster" {
            return MailboxAddress(localPart: String(inner), domain: "")
        }
        return try mailbox(inner)
    }

    // Mailbox = Local-part "@" ( Domain / address-literal )
    public func mailbox(_ text: Substring) throws(SMTPSyntaxError) -> MailboxAddress {
        guard let at = text.lastIndex(of: "@") else { throw .syntax("address has no domain") }
        let local = text[..<at]
        let domain = text[text.index(after: at)...]
        try validateLocalPart(local)
        try validateDomainOrLiteral(domain)
        return MailboxAddress(localPart: String(local), domain: String(domain))
    }

    // Local-part = Dot-string / Quoted-string
    private func validateLocalPart(_ local: Substring) throws(SMTPSyntaxError) {
        guard !local.isEmpty else { throw .syntax("empty local part") }
        guard local.utf8.count <= limits.localPartLength else { throw .syntax("local part too long") }
        if local.first == "\"" {
            try validateQuotedString(local)
        } else {
            try validateDotString(local)
        }
    }

    // Dot-string = Atom *("." Atom)
    private func validateDotString(_ text: Substring) throws(SMTPSyntaxError) {
        for atom in text.split(separator: ".", omittingEmptySubsequences: false) {
            guard !atom.isEmpty else { throw .syntax("empty atom in local part") }
            for scalar in atom.unicodeScalars where !isAtext(scalar) {
                throw .syntax("character not allowed in local part")
            }
        }
    }

    // Quoted-string = DQUOTE *QcontentSMTP DQUOTE
    // QcontentSMTP = qtextSMTP / quoted-pairSMTP ; quoted-pairSMTP = %d92 %d32-126
    private func validateQuotedString(_ text: Substring) throws(SMTPSyntaxError) {
        let scalars = Array(text.unicodeScalars)
        guard scalars.count >= 2, scalars.last == "\"" else { throw .syntax("unterminated quoted local part") }
        var index = 1
        while index < scalars.count - 1 {
            let scalar = scalars[index]
            if scalar == "\\" {
                guard index + 1 < scalars.count - 1, (32...126).contains(scalars[index + 1].value) else {
                    throw .syntax("bad escape in quoted local part")
                }
                index += 2
                continue
            }
            // qtextSMTP = %d32-33 / %d35-91 / %d93-126 / UTF8-non-ascii
            let value = scalar.value
            let isQtext = value == 32 || value == 33 || (35...91).contains(value) || (93...126).contains(value)
            guard isQtext || (allowUTF8 && value >= 0x80) else {
                throw .syntax("character not allowed in quoted local part")
            }
            index += 1
        }
    }

    // atext = ALPHA / DIGIT / "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "/" /
    //         "=" / "?" / "^" / "_" / "`" / "{" / "|" / "}" / "~" / UTF8-non-ascii
    private func isAtext(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value >= 0x80 { return allowUTF8 }
        if ("0"..."9").contains(scalar) || ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) {
            return true
        }
        return "!#$%&'*+-/=?^_`{|}~".unicodeScalars.contains(scalar)
    }

    private func validateDomainOrLiteral(_ domain: Substring) throws(SMTPSyntaxError) {
        guard !domain.isEmpty else { throw .syntax("empty domain") }
        guard domain.utf8.count <= limits.domainLength else { throw .syntax("domain too long") }
        if domain.first == "[" {
            try validateAddressLiteral(domain)
        } else {
            try validateDomain(domain)
        }
    }

    // Domain = sub-domain *("." sub-domain) ; sub-domain = Let-dig [Ldh-str] / U-label
    private func validateDomain(_ domain: Substring) throws(SMTPSyntaxError) {
        for label in domain.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.utf8.count <= 63 else { throw .syntax("bad domain label") }
            guard label.first != "-", label.last != "-" else { throw .syntax("domain label starts or ends with a hyphen") }
            for scalar in label.unicodeScalars {
                let ok = ("0"..."9").contains(scalar) || ("a"..."z").contains(scalar)
                    || ("A"..."Z").contains(scalar) || scalar == "-" || (allowUTF8 && scalar.value >= 0x80)
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
