import Logging
import NIOCore
import NIOPosix
import RelaisDNS

/// Finds the courier for each route target: one maildir writer for every
/// maildir, one connection pool per smarthost configuration (and per MX
/// host and address for direct delivery).
struct Couriers: Sendable {
    let maildirWriter: MaildirWriter
    let pools: UpstreamPools
    let threadPool: NIOThreadPool
    /// Answers the MX and address lookups of direct delivery.
    let resolver: DNSResolver
    let loop: any EventLoop
    let policies: MTASTSPolicies
    let logger: Logger

    func courier(for target: RouteTarget) async -> any Courier {
        switch target {
        case .maildir(let path):
            return MaildirCourier(path: path, writer: maildirWriter, threadPool: threadPool)
        case .smarthost(let smarthost):
            return SmarthostCourier(smarthost: smarthost, pool: await pools.pool(for: smarthost))
        case .mx(let target):
            return MXCourier(target: target, resolver: resolver, loop: loop, pools: pools, policies: policies, logger: logger)
        }
    }
}
