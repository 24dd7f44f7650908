import Foundation
import Logging
import NIOCore

/// A message made durable in the spool, on its way to the delivery queue.
struct SpooledMessage: Sendable {
    var envelope: Envelope
    var content: ByteBuffer
}

/// Makes and queues what Relais owes a sender: RFC 3464 bounces for failed
/// recipients and success notices (NOTIFY=SUCCESS). The report is durable
/// in the spool before the caller forgets the original, then handed to the
/// delivery queue. Intake (recipients refused by `route`) and the relay
/// queue (failed deliveries) both send through this one component.
struct BounceSender: Sendable {
    let spool: Spool
    let hostname: String
    /// Where a report goes (the running policy's route hook, then its
    /// default route); called on the given event loop.
    let route: @Sendable (Envelope, ByteBuffer, any EventLoop) -> EventLoopFuture<[RouteTarget]>
    /// Where spooled reports go next (the delivery queue).
    let handOff: AsyncStream<SpooledMessage>.Continuation
    let logger: Logger

    /// Queues one report about `envelope` for `reports`. Succeeds with true
    /// once it is durable (or when nothing is owed: no reports, or the null
    /// sender, who never gets one); false when it could not be spooled.
    func send(_ reports: [RefusedRecipient], about envelope: Envelope, content: ByteBuffer,
              on loop: any EventLoop) -> EventLoopFuture<Bool> {
        guard !reports.isEmpty, !envelope.sender.isEmpty else { return loop.makeSucceededFuture(true) }
        let bounce = BounceMessage(hostname: hostname, original: envelope, originalContent: content,
                                   failures: reports, id: QueueID.make(), time: Int(Date().timeIntervalSince1970))
        let (logger, handOff, spool, route) = (self.logger, self.handOff, self.spool, self.route)
        return loop.flatSubmit {
            route(bounce.envelope, bounce.content, loop)
        }.flatMap { targets in
            var envelope = bounce.envelope
            envelope.routes = [targets]
            let spooled = SpooledMessage(envelope: envelope, content: bounce.content)
            return spool.store(envelope, content: spooled.content, on: loop).map { spooled }
        }.map { spooled in
            logger.info("bounce queued", metadata: ["id": "\(spooled.envelope.id)", "original": "\(envelope.id)",
                                                    "to": "<\(envelope.sender)>", "recipients": "\(reports.count)"])
            handOff.yield(spooled)
            return true
        }.recover { error in
            logger.error("cannot queue bounce", metadata: ["original": "\(envelope.id)", "error": "\(error)"])
            return false
        }
    }
}
