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
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3,
              let c = Int(parts[0]), [2, 4, 5].contains(c), parts[0].count == 1,
              let s = Int(parts[1]), (1...3).contains(parts[1].count),
              let d = Int(parts[2]), (1...3).contains(parts[2].count)
        else { return nil }
        self.init(c, s, d)
    }

    public var description: String { "\(statusClass).\(subject).\(detail)" }
}
