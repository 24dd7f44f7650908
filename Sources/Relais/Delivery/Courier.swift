import NIOCore

/// The seam between the queue and the ways mail leaves Relais. A courier
/// carries some recipients of one queued message to one destination (a
/// maildir, a smarthost; direct MX delivery and test fakes later) and says
/// what became of each. The queue knows only this protocol: failover,
/// retries, state and bounces are the same for every courier.
protocol Courier: Sendable {
    /// How logs and the recipient state name the destination.
    var name: String { get }

    /// Delivers `parcel.recipients`, returning an outcome for each. Throws
    /// `CourierUnavailable` when the destination could not start at all,
    /// so the next target of the route is tried.
    func deliver(_ parcel: Parcel) async throws(CourierUnavailable) -> [String: RecipientOutcome]
}

/// What a courier is handed: the queued message and the recipients it
/// carries this time.
struct Parcel: Sendable {
    var envelope: Envelope
    var recipients: [String]
    var content: ByteBuffer
}

/// The destination could not take the transaction (cannot connect, timed
/// out, 4xx before MAIL was accepted, the maildir cannot be written).
struct CourierUnavailable: Error, CustomStringConvertible {
    var description: String
    /// When the destination may take mail again, when it is known.
    var retryAt: Double?

    init(_ description: String, retryAt: Double? = nil) {
        self.description = description
        self.retryAt = retryAt
    }
}

/// What happened to one recipient in one attempt.
enum RecipientOutcome: Equatable, Sendable {
    /// Accepted; `dsnPassedOn` when the upstream took over DSN duties (RFC 3461).
    case delivered(String, dsnPassedOn: Bool)
    /// Try again later: at `retryAt` when the destination said when
    /// (down until then, quota window opening), else on the schedule.
    case deferred(String, retryAt: Double? = nil)
    /// Final: bounce.
    case failed(String)
}

extension Dictionary where Key == String, Value == RecipientOutcome {
    /// The same outcome for every one of `recipients`.
    init(every recipients: [String], _ outcome: RecipientOutcome) {
        self.init(recipients.map { ($0, outcome) }, uniquingKeysWith: { first, _ in first })
    }
}

