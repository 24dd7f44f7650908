/// Relays through an upstream SMTP server over its connection pool,
/// splitting the recipients when the provider takes fewer per message.
struct SmarthostCourier: Courier {
    let smarthost: Smarthost
    let pool: UpstreamPool

    var name: String { smarthost.name }

    func deliver(_ parcel: Parcel) async throws(CourierUnavailable) -> [String: RecipientOutcome] {
        let envelope = parcel.envelope
        var dsn: [String: RecipientDSN] = [:]
        for (index, address) in envelope.recipients.enumerated() where parcel.recipients.contains(address) {
            dsn[address] = envelope.dsn(index)
        }
        var message = OutboundMessage(id: envelope.id, sender: envelope.sender, recipients: parcel.recipients,
                                      content: envelope.stamped(parcel.content, targetSigners: smarthost.dkim), smtpUTF8: envelope.smtpUTF8, body: envelope.body,
                                      ret: envelope.ret, envid: envelope.envid, dsn: dsn, headers: smarthost.headers)
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
