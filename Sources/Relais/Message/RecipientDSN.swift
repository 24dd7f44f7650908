import SMTPCore

/// A recipient's RFC 3461 wishes: which notifications (NOTIFY) and the
/// original recipient address (ORCPT). Stored with the queued message and
/// passed to upstreams that offer DSN.
public struct RecipientDSN: Codable, Hashable, Sendable {
    /// NEVER, or some of SUCCESS, FAILURE, DELAY; nil when not given (then a
    /// failure is notified, RFC 3461 4.1).
    public var notify: [String]?
    public var orcpt: String?

    public init(notify: [String]? = nil, orcpt: String? = nil) {
        self.notify = notify
        self.orcpt = orcpt
    }

    var wantsFailure: Bool { notify.map { $0.contains("FAILURE") } ?? true }
    var wantsSuccess: Bool { notify?.contains("SUCCESS") ?? false }
    /// NOTIFY=DELAY; with `forAll`, anyone but NOTIFY=NEVER.
    func wantsDelay(forAll: Bool) -> Bool { notify.map { $0.contains("DELAY") || (forAll && $0 != ["NEVER"]) } ?? forAll }

    /// `NOTIFY=... ORCPT=...` for an RCPT command to a DSN-capable upstream.
    var rcptParameters: ESMTPParameters {
        var parameters: [ESMTPParameters.Parameter] = []
        if let notify { parameters.append(.init(keyword: "NOTIFY", value: notify.joined(separator: ","))) }
        if let orcpt { parameters.append(.init(keyword: "ORCPT", value: orcpt)) }
        return ESMTPParameters(parameters)
    }
}
