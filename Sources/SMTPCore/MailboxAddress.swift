/// A mailbox as it travels in the envelope: `local-part@domain`, where the
/// local part keeps its wire form (quotes and escapes included) so that it is
/// passed on exactly as received, and the domain may be an address literal.
public struct MailboxAddress: Sendable, Hashable, CustomStringConvertible {
    /// The local part in wire form, e.g. `john.doe` or `"john doe"`.
    public var localPart: String
    /// The domain, `[192.0.2.1]` style literal, or empty for the bare
    /// `<Postmaster>` recipient that RFC 5321 4.5.1 requires servers to take.
    public var domain: String

    public init(localPart: String, domain: String) {
        self.localPart = localPart
        self.domain = domain
    }

    /// True when the address needs SMTPUTF8 to travel (RFC 6531).
    public var needsSMTPUTF8: Bool {
        !localPart.utf8.allSatisfy { $0 < 0x80 } || !domain.utf8.allSatisfy { $0 < 0x80 }
    }

    public var description: String { domain.isEmpty ? localPart : "\(localPart)@\(domain)" }
}

/// The sender of a transaction: a mailbox, or the null path `<>` used by
/// bounces, to which no bounce may ever be sent.
public enum ReversePath: Sendable, Hashable, CustomStringConvertible {
    case null
    case mailbox(MailboxAddress)

    public var mailbox: MailboxAddress? {
        if case .mailbox(let mailbox) = self { return mailbox }
        return nil
    }

    /// The address without brackets; empty for the null path.
    public var description: String { mailbox?.description ?? "" }
}

// MARK: - Encoding

extension ReversePath {
    /// The path in angle brackets, as MAIL FROM carries it.
    public var pathString: String { "<\(description)>" }
}

extension MailboxAddress {
    /// The path in angle brackets, as RCPT TO carries it.
    public var pathString: String { "<\(description)>" }
}

// MARK: - Stored form

extension MailboxAddress {
    /// Rebuilds a mailbox from its `description`, as the spool stores it:
    /// the domain never holds an `@`, so the last one separates the parts.
    public init(storedText text: String) {
        if let at = text.lastIndex(of: "@") {
            self.init(localPart: String(text[..<at]), domain: String(text[text.index(after: at)...]))
        } else {
            self.init(localPart: text, domain: "")
        }
    }
}

extension ReversePath {
    /// Rebuilds a reverse path from its `description`; empty is `<>`.
    public init(storedText text: String) {
        self = text.isEmpty ? .null : .mailbox(MailboxAddress(storedText: text))
    }
}
