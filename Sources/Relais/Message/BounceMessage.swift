import NIOCore
import SMTPCore

/// An RFC 3464 delivery status notification telling the sender which
/// recipients failed and why: `multipart/report` with a human part, the
/// machine-readable `message/delivery-status` part and the original message
/// (`message/rfc822`), or only its headers (`text/rfc822-headers`) when it
/// is larger than `attachLimit`. Sent from the null sender, so it can never
/// cause a bounce itself.
struct BounceMessage {
    static let attachLimit = 64 * 1024

    var hostname: String
    var original: Envelope
    /// The original message as queued.
    var originalContent: ByteBuffer
    var failures: [RefusedRecipient]
    var id: String
    var time: Int

    /// Only successes reported (NOTIFY=SUCCESS): a delivery report, not a bounce.
    private var isSuccessReport: Bool { failures.allSatisfy { $0.action == "delivered" || $0.action == "relayed" } }
    /// Only delays reported (NOTIFY=DELAY): the message is still being tried.
    private var isDelayReport: Bool { failures.allSatisfy { $0.action == "delayed" } }

    private var subject: String {
        if isDelayReport { return "Delayed Mail (still being retried)" }
        return isSuccessReport ? "Successful Mail Delivery Report" : "Undelivered Mail Returned to Sender"
    }

    private var explanation: String {
        if isDelayReport {
            return "Your message \(original.id) has not been delivered yet to these\r\nrecipients; delivery will be tried again:"
        }
        return isSuccessReport ? "Your message \(original.id) was delivered to these recipients,\r\nas you asked to be told:"
            : "Your message \(original.id) could not be delivered to one or more\r\nrecipients:"
    }

    var envelope: Envelope {
        Envelope(id: id, sender: "", recipients: [original.sender], smtpUTF8: original.smtpUTF8, body: "8BITMIME",
                 receivedAt: Double(time), clientIP: "127.0.0.1", helo: hostname)
    }

    var content: ByteBuffer {
        let boundary = "\(id)/\(hostname)"
        let date = ReceivedHeader.rfc5322Date(time)
        var text = """
            From: Mail Delivery System <MAILER-DAEMON@\(hostname)>\r
            To: <\(original.sender)>\r
            Subject: \(subject)\r
            Date: \(date)\r
            Message-ID: <\(id).bounce@\(hostname)>\r
            Auto-Submitted: auto-replied\r
            MIME-Version: 1.0\r
            Content-Type: multipart/report; report-type=delivery-status;\r
            \tboundary="\(boundary)"\r
            \r
            This is a MIME-encapsulated message.\r
            \r
            --\(boundary)\r
            Content-Type: text/plain; charset=us-ascii\r
            \r
            This is the mail system at \(hostname).\r
            \r
            \(explanation)\r
            \r

            """
        for failure in failures {
            text += "<\(failure.recipient)>: \(failure.reply)\r\n"
        }
        text += "\r\n--\(boundary)\r\nContent-Type: message/delivery-status\r\n\r\n"
        text += "Reporting-MTA: dns; \(hostname)\r\n"
        if let envid = original.envid { text += "Original-Envelope-Id: \(envid)\r\n" }
        text += "X-Relais-Queue-ID: \(original.id)\r\n"
        text += "Arrival-Date: \(ReceivedHeader.rfc5322Date(Int(original.receivedAt)))\r\n"
        for failure in failures {
            let action = failure.action ?? "failed"
            text += "\r\n"
            if let orcpt = failure.dsn?.orcpt { text += "Original-Recipient: \(orcpt)\r\n" }
            text += "Final-Recipient: rfc822; \(failure.recipient)\r\n"
            let status = switch action {
            case "failed": Self.status(of: failure.reply, otherwise: "5.0.0")
            case "delayed": Self.status(of: failure.reply, otherwise: "4.0.0")
            default: "2.0.0"
            }
            text += "Action: \(action)\r\nStatus: \(status)\r\n"
            text += "Diagnostic-Code: \(Self.diagnostic(failure.reply))\r\n"
        }
        var buffer = ByteBuffer(string: text)
        // RET=HDRS, a success or delay report without RET=FULL, or a large message: headers only.
        let full = original.ret == "FULL" || (original.ret == nil && !isSuccessReport && !isDelayReport)
        if full && originalContent.readableBytes <= Self.attachLimit {
            buffer.writeString("\r\n--\(boundary)\r\nContent-Type: message/rfc822\r\n\r\n")
            var attached = originalContent
            buffer.writeBuffer(&attached)
        } else {
            buffer.writeString("\r\n--\(boundary)\r\nContent-Type: text/rfc822-headers\r\n\r\n")
            buffer.writeBytes(MessageHeaders(parsing: originalContent).fields.flatMap(\.raw))
        }
        buffer.writeString("\r\n--\(boundary)--\r\n")
        return buffer
    }

    /// The first enhanced status code in the text (`5.1.1`), else `otherwise`.
    private static func status(of reason: String, otherwise: String) -> String {
        for word in reason.split(separator: " ") {
            if let code = EnhancedStatusCode(parsing: word), code.statusClass != 2 { return code.description }
        }
        return otherwise
    }

    /// `smtp; <reply>` when the reason holds an SMTP reply, else the reason
    /// under Relais' own diagnostic type (RFC 3464 2.3.6).
    private static func diagnostic(_ reason: String) -> String {
        let words = reason.split(separator: " ")
        if let start = words.firstIndex(where: { $0.count == 3 && ($0.hasPrefix("4") || $0.hasPrefix("5")) && Int($0) != nil }) {
            return "smtp; " + words[start...].joined(separator: " ")
        }
        return "X-Relais; " + reason
    }
}
