/// The `keyword[=value]` parameters after a MAIL or RCPT path (RFC 5321 4.1.2),
/// in the order given, with keywords upper-cased for lookup.
///
/// ```
/// Mail-parameters = esmtp-param *(SP esmtp-param)
/// esmtp-param     = esmtp-keyword ["=" esmtp-value]
/// esmtp-keyword   = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
/// esmtp-value     = 1*(%d33-60 / %d62-126)   ; plus UTF-8 under SMTPUTF8
/// ```
public struct ESMTPParameters: Sendable, Hashable, CustomStringConvertible {
    public struct Parameter: Sendable, Hashable {
        public var keyword: String
        public var value: String?

        public init(keyword: String, value: String? = nil) {
            self.keyword = keyword.uppercased()
            self.value = value
        }
    }

    public var parameters: [Parameter]

    public init(_ parameters: [Parameter] = []) {
        self.parameters = parameters
    }

    public subscript(keyword: String) -> String? {
        parameters.first { $0.keyword == keyword.uppercased() }?.value
    }

    public func contains(_ keyword: String) -> Bool {
        parameters.contains { $0.keyword == keyword.uppercased() }
    }

    public var isEmpty: Bool { parameters.isEmpty }

    /// Parses the space-separated parameter list; keywords may appear once.
    public static func parse(_ text: Substring) throws(SMTPSyntaxError) -> ESMTPParameters {
        var result: [Parameter] = []
        for word in text.split(separator: " ") {
            let keyword: Substring
            var value: String?
            if let equals = word.firstIndex(of: "=") {
                keyword = word[..<equals]
                let rawValue = word[word.index(after: equals)...]
                guard !rawValue.isEmpty, rawValue.unicodeScalars.allSatisfy({
                    ($0.value >= 33 && $0.value <= 126 && $0 != "=") || $0.value >= 0x80
                }) else { throw .syntax("bad value for parameter \(keyword)") }
                value = String(rawValue)
            } else {
                keyword = Substring(word)
            }
            guard let first = keyword.unicodeScalars.first, first.isASCIIAlphanumeric,
                  keyword.unicodeScalars.allSatisfy({ $0.isASCIIAlphanumeric || $0 == "-" })
            else { throw .syntax("bad parameter keyword") }
            let parameter = Parameter(keyword: String(keyword), value: value)
            guard !result.contains(where: { $0.keyword == parameter.keyword }) else {
                throw .syntax("parameter \(parameter.keyword) given twice")
            }
            result.append(parameter)
        }
        return ESMTPParameters(result)
    }

    // MARK: - Encoding

    public var description: String {
        parameters.map { p in p.value.map { "\(p.keyword)=\($0)" } ?? p.keyword }.joined(separator: " ")
    }
}

extension Unicode.Scalar {
    var isASCIIAlphanumeric: Bool {
        ("0"..."9").contains(self) || ("a"..."z").contains(self) || ("A"..."Z").contains(self)
    }
}
