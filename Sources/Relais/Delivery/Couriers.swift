import NIOPosix

/// Finds the courier for each route target: one maildir writer for every
/// maildir, one connection pool per smarthost configuration.
struct Couriers: Sendable {
    let maildirWriter: MaildirWriter
    let pools: UpstreamPools
    let threadPool: NIOThreadPool

    func courier(for target: RouteTarget) async -> any Courier {
        switch target {
        case .maildir(let path):
            return MaildirCourier(path: path, writer: maildirWriter, threadPool: threadPool)
        case .smarthost(let smarthost):
            return SmarthostCourier(smarthost: smarthost, pool: await pools.pool(for: smarthost))
        }
    }
}
