import Foundation

/// An MTA-STS policy (RFC 8461 section 3.2) and its TXT record (section
/// 3.1), parsed; pure. `enforce` allows only matching MX hosts, over
/// verified TLS; `testing` reports what enforce would refuse; `none` is no
/// policy.
struct MTASTSPolicy: Codable, Equatable, Sendable {
    enum Mode: String, Codable, Sendable {
        case enforce, testing, none
    }

    var mode: Mode
    /// `mail.example.com` or `*.example.net` (one leftmost label).
    var mx: [String]
    var maxAge: Int

    /// Longest `max_age` a policy may have (about a year).
    static let maxMaxAge = 31_557_600

    /// The body of `/.well-known/mta-sts.txt`; nil when it is not a valid policy.
    init?(parsing text: String) {
        var fields: [(String, String)] = []
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields.append((line[..<colon].trimmingCharacters(in: .whitespaces).lowercased(),
                           line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        guard fields.first(where: { $0.0 == "version" })?.1 == "STSv1",
              let modeText = fields.first(where: { $0.0 == "mode" })?.1, let mode = Mode(rawValue: modeText),
              let ageText = fields.first(where: { $0.0 == "max_age" })?.1, let age = Int(ageText), age >= 0 else { return nil }
        self.mode = mode
        self.mx = fields.filter { $0.0 == "mx" }.map { $0.1.lowercased() }
        self.maxAge = min(age, Self.maxMaxAge)
        if mode != .none && mx.isEmpty { return nil }
    }

    /// Whether MX host `host` is allowed (section 4.1).
    func allows(_ host: String) -> Bool {
        let host = host.lowercased()
        return mx.contains { pattern in
            if pattern.hasPrefix("*.") {
                let suffix = pattern.dropFirst(1)
                guard host.hasSuffix(suffix) else { return false }
                let label = host.dropLast(suffix.count)
                return !label.isEmpty && !label.contains(".")
            }
            return pattern == host
        }
    }

    /// The `id` of a `_mta-sts.<domain>` TXT record (`v=STSv1; id=...;`);
    /// nil when it is not one.
    static func recordID(_ text: String) -> String? {
        let fields = text.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard fields.first == "v=STSv1" else { return nil }
        return fields.first { $0.hasPrefix("id=") }.map { String($0.dropFirst(3)) }.flatMap { $0.isEmpty ? nil : $0 }
    }
}
