import Logging
import NIOCore
import SMTPCore

extension PolicyGeneration {
    /// Where a report Relais made (a bounce, delay or success notice to
    /// `envelope`'s one recipient, the original sender) goes: through this
    /// generation's route hook, which sees `msg.sender == ""` and
    /// `msg.is_bounce == true`, else the default route. A report is never
    /// dropped: a refusal or a failing hook is logged and the default route
    /// taken. Call on `loop`.
    func route(report envelope: Envelope, content: ByteBuffer, on loop: any EventLoop, timings: HookTimings,
               logger: Logger) -> [RouteTarget] {
        let defaultRoute = configuration.effectiveDefaultRoute
        guard hasHooks(.route), let runtime = runtime(on: loop), let recipient = envelope.recipients.first else {
            return defaultRoute
        }
        let notes = runtime.state.makeTableReference()
        defer { runtime.state.release(notes) }
        let draft = MessageDraft(id: envelope.id, sender: .null, recipients: [MailboxAddress(storedText: recipient)],
                                 content: content, smtpUTF8: envelope.smtpUTF8)
        let message = MessageObject(draft: draft, notes: notes, editable: false, isReport: true)
        let (route, failure) = timings.measure(.route) { runtime.route(draft.recipients[0], of: message, defaultRoute: defaultRoute) }
        if let refusal = route.refusal {
            logger.error("the route hook refused a report; it takes the default route", metadata: [
                "id": "\(envelope.id)", "reply": "\(refusal)", "error": "\(failure ?? "")",
            ])
            return defaultRoute
        }
        return route.targets
    }
}
