/// The RFC 3461 delivery status notification parameters: RET and ENVID on
/// MAIL, NOTIFY and ORCPT on RCPT, checked against their grammar.
public enum DSNParameters {
    /// `NOTIFY=NEVER` or a comma list of SUCCESS, FAILURE, DELAY (RFC 3461 4.1).
    public static func notify(_ value: String) -> [String]? {
        let items = value.uppercased().split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        if items == ["NEVER"] { return items }
        guard !items.isEmpty, Set(items).count == items.count,
              items.allSatisfy({ ["SUCCESS", "FAILURE", "DELAY"].contains($0) })
        else { return nil }
        return items
    }

    /// `ORCPT=addr-type;xtext` (RFC 3461 4.2).
    public static func isValidORCPT(_ value: String) -> Bool {
        guard let semicolon = value.firstIndex(of: ";") else { return false }
        let type = value[..<semicolon]
        let address = value[value.index(after: semicolon)...]
        return !type.isEmpty && type.unicodeScalars.allSatisfy { $0.isASCIIAlphanumeric || $0 == "-" }
            && !address.isEmpty && value.utf8.count <= 500 && isXtext(address)
    }

    /// `RET=FULL` or `RET=HDRS` (RFC 3461 4.3).
    public static func ret(_ value: String) -> String? {
        let upper = value.uppercased()
        return upper == "FULL" || upper == "HDRS" ? upper : nil
    }

    /// `ENVID=xtext`, at most 100 characters (RFC 3461 4.4).
    public static func isValidEnvelopeID(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.count <= 100 && isXtext(Substring(value))
    }

    // xtext = *( xchar / hexchar ) ; xchar = %d33-42 / %d44-60 / %d62-126 ; hexchar = "+" 2HEXDIGIT
    static func isXtext(_ text: Substring) -> Bool {
        var bytes = Array(text.utf8)[...]
        while let byte = bytes.first {
            if byte == UInt8(ascii: "+") {
                guard bytes.count >= 3, bytes.dropFirst().prefix(2).allSatisfy({ isUpperHex($0) }) else { return false }
                bytes = bytes.dropFirst(3)
                continue
            }
            guard (33...126).contains(byte), byte != UInt8(ascii: "=") else { return false }
            bytes = bytes.dropFirst()
        }
        return true
    }

    private static func isUpperHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }
}
