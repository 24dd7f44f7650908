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
               logger: Logger) -> EventLoopFuture<[RouteTarget]> {
        let defaultRoute = configuration.effectiveDefaultRoute
        guard hasHooks(.route), let runtime = runtime(on: loop), let recipient = envelope.recipients.first else {
            return loop.makeSucceededFuture(defaultRoute)
        }
        let promise = loop.makePromise(of: [RouteTarget].self)
        let draft = MessageDraft(id: envelope.id, sender: .null, recipients: [MailboxAddress(storedText: recipient)],
                                 content: content, smtpUTF8: envelope.smtpUTF8)
        let message = MessageObject(draft: draft, editable: false, isReport: true)
        _ = HookRun.timed(.route, limit: configuration.maxHookTime, on: loop, timings: timings, { finish in
            runtime.route(draft.recipients[0], of: message, defaultRoute: defaultRoute) { finish(($0, $1)) }
        }) { (route: RecipientRoute, failure: String?) in
            message.releaseNotes(in: runtime.state)
            if let refusal = route.refusal {
                logger.error("the route hook refused a report; it takes the default route", metadata: [
                    "id": "\(envelope.id)", "reply": "\(refusal)", "error": "\(failure ?? "")",
                ])
                return promise.succeed(defaultRoute)
            }
            promise.succeed(route.targets)
        }
        return promise.futureResult
    }
}
