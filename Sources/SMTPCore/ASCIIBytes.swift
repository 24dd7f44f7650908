/// ASCII tests on raw bytes, for grammars whose delimiters are all ASCII:
/// parsing their octets skips decoding UTF-8 and grapheme breaking.
extension UInt8 {
    var isASCIIDigit: Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) }

    var isASCIILetterOrDigit: Bool {
        isASCIIDigit || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
    }

    var asciiLowercased: UInt8 { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self) ? self | 0x20 : self }
}

extension Collection<UInt8> {
    /// Whether these bytes spell `text`, ignoring the case of ASCII letters.
    func equalsIgnoringASCIICase(_ text: String) -> Bool {
        elementsEqual(text.utf8) { $0.asciiLowercased == $1.asciiLowercased }
    }
}
