/// An RFC 3463 enhanced status code (`class.subject.detail`), carried on every
/// reply once ENHANCEDSTATUSCODES is advertised so that clients can tell
/// policy refusals from syntax errors without parsing text.
public struct EnhancedStatusCode: Sendable, Hashable, CustomStringConvertible {
    public var statusClass: Int
    public var subject: Int
    public var detail: Int

    public init(_ statusClass: Int, _ subject: Int, _ detail: Int) {
        self.statusClass = statusClass
        self.subject = subject
        self.detail = detail
    }

    /// Parses `2.1.0` style text; nil when the text is not an enhanced code.
    public init?(parsing text: Substring) {
        // status-code = class "." subject "." detail ; class = "2" / "4" / "5" ; subject, detail = 1*3digit
        var numbers = [0, 0, 0]
        var part = 0
        var digits = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: ".") {
                guard digits > 0, part < 2 else { return nil }
                part += 1
                digits = 0
                continue
            }
            guard byte.isASCIIDigit, digits < (part == 0 ? 1 : 3) else { return nil }
            numbers[part] = numbers[part] * 10 + Int(byte - UInt8(ascii: "0"))
            digits += 1
        }
        guard part == 2, digits > 0, [2, 4, 5].contains(numbers[0]) else { return nil }
        self.init(numbers[0], numbers[1], numbers[2])
    }

    public var description: String { "\(statusClass).\(subject).\(detail)" }
}
