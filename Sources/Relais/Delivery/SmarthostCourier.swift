/// Relays through an upstream SMTP server over its connection pool,
/// splitting the recipients when the provider takes fewer per message.
struct SmarthostCourier: Courier {
    let smarthost: Smarthost
    let pool: UpstreamPool

    var name: String { smarthost.name }

    func deliver(_ parcel: Parcel) async throws(CourierUnavailable) -> [String: RecipientOutcome] {
        var message = OutboundMessage(parcel.envelope, recipients: parcel.recipients, content: parcel.content,
                                      signers: smarthost.dkim, headers: smarthost.headers)
        var outcomes: [String: RecipientOutcome] = [:]
        let size = smarthost.maxRecipients ?? max(parcel.recipients.count, 1)
        for start in stride(from: 0, to: parcel.recipients.count, by: size) {
            message.recipients = Array(parcel.recipients[start..<min(start + size, parcel.recipients.count)])
            do {
                outcomes.merge(try await pool.deliver(message)) { $1 }
            } catch where outcomes.isEmpty {
                throw CourierUnavailable("\(smarthost.name): \(error)",
                                         retryAt: (error as? UpstreamTransaction.FailoverReason)?.retryAt)
            } catch {
                // Earlier parts went through: failing over now would send them twice.
                for recipient in parcel.recipients[start...] { outcomes[recipient] = .deferred("\(smarthost.name): \(error)") }
                break
            }
        }
        return outcomes
    }
}
