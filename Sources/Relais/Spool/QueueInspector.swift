import Foundation
import NIOCore

/// Reads the spool for `relais queue list` and `relais queue show`: what is
/// queued, for whom, and where each recipient stands. Works whether or not
/// a relay is running (it only reads).
public struct QueueInspector {
    public let folder: SpoolFolder

    public init(spool: String) { self.folder = SpoolFolder(root: spool) }

    public func ids() throws -> [String] { try folder.queuedIDs() }

    /// Messages `offset ..< offset + limit` (oldest first; all by default).
    /// Only the envelopes are read. The upstreams that have mail waiting or
    /// are not up end the list; waiting recipients are counted over the
    /// messages shown.
    public func list(offset: Int = 0, limit: Int? = nil, now: Date = Date()) throws -> String {
        var lines: [String] = []
        var waiting: [String: Int] = [:]
        let all = try ids()
        let shown = all.dropFirst(offset).prefix(limit ?? all.count)
        for id in shown {
            guard let (envelope, size, state, _) = try? folder.loadEnvelope(id) else {
                lines.append("\(id)  (unreadable, or still being written)")
                continue
            }
            let age = Self.duration(now.timeIntervalSince1970 - envelope.receivedAt)
            lines.append("\(id)  \(age) old  \(size) bytes  from <\(envelope.sender)>")
            for (index, recipient) in envelope.recipients.enumerated() {
                lines.append("    " + describe(recipient, index: index, envelope: envelope, state: state, now: now))
                let saved = state?.recipients.first { $0.address == recipient }
                guard saved?.status ?? .pending == .pending else { continue }
                for name in (envelope.route(index) ?? []).smarthostNames { waiting[name, default: 0] += 1 }
            }
        }
        let paged = shown.count < all.count
        lines.append("\(all.count) message(s) queued"
            + (paged ? " (showing \(shown.isEmpty ? 0 : offset + 1)-\(offset + shown.count))" : ""))
        // Upstreams with mail waiting or not up; indented, so that message
        // ids stay the only lines that are not.
        for (name, record) in folder.upstreamStates().sorted(by: { $0.key < $1.key }) {
            let state = record.health.summary(at: now.timeIntervalSince1970)
            guard waiting[name] != nil || state != "up" else { continue }
            var text = "  upstream \(name): \(state)"
            if let quota = record.quota { text += ", quota " + record.usage.summary(at: now.timeIntervalSince1970, quota) }
            lines.append(text + ", \(waiting[name] ?? 0) recipient(s) waiting")
        }
        return lines.joined(separator: "\n")
    }

    public func show(_ id: String, now: Date = Date()) throws -> String {
        guard QueueID.isValid(id) else { throw ConfigurationError("\(id.debugDescription) is not a queue id") }
        let entry = try folder.load(id)
        let (envelope, content, state) = (entry.envelope, entry.content, entry.state)
        var lines = ["id        \(envelope.id)",
                     "received  \(ReceivedHeader.rfc5322Date(Int(envelope.receivedAt))) from \(envelope.clientIP) (\(envelope.helo))",
                     "sender    <\(envelope.sender)>",
                     "size      \(content.readableBytes) bytes" + (envelope.smtpUTF8 ? ", SMTPUTF8" : ""),
                     "recipients"]
        for (index, recipient) in envelope.recipients.enumerated() {
            lines.append("  " + describe(recipient, index: index, envelope: envelope, state: state, now: now))
            let route = envelope.route(index) ?? []
            lines.append("      route: " + (route.isEmpty ? "default" : route.map(\.description).joined(separator: " -> ")))
        }
        lines.append("headers")
        for field in MessageHeaders(parsing: content).fields {
            lines.append(contentsOf: String(decoding: field.raw, as: UTF8.self).split(separator: "\r\n").map { "  " + $0 })
        }
        return lines.joined(separator: "\n")
    }

    private func describe(_ address: String, index: Int, envelope: Envelope, state: MessageState?, now: Date) -> String {
        guard let recipient = state?.recipients.first(where: { $0.address == address }) else {
            return "<\(address)>  pending, not tried yet"
        }
        var text = "<\(address)>  \(recipient.status.rawValue), \(recipient.attempts) attempt(s)"
        if recipient.status == .pending {
            let wait = recipient.nextAttempt - now.timeIntervalSince1970
            text += wait > 0 ? ", next in \(Self.duration(wait))" : ", due now"
        }
        if let target = recipient.lastTarget { text += ", via \(target)" }
        if let result = recipient.lastResult { text += ": \(result)" }
        return text
    }

    static func duration(_ seconds: Double) -> String {
        let value = Int(max(0, seconds))
        if value < 60 { return "\(value)s" }
        if value < 3600 { return "\(value / 60)m\(value % 60)s" }
        if value < 86400 { return "\(value / 3600)h\(value % 3600 / 60)m" }
        return "\(value / 86400)d\(value % 86400 / 3600)h"
    }
}
