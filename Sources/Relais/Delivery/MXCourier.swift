import Logging
import NIOCore
import RelaisDNS

/// Delivers straight to each recipient domain's MX hosts: the plan of
/// `MXPlan` (narrowed by the domain's MTA-STS policy in enforce mode, which
/// also makes TLS verified), then every address of every host in order
/// until one takes the transaction. Each MX host is an upstream of its own (pool, connection
/// limit, circuit breaker and throttling by `mx:<host>`). When no host of
/// any domain could be reached, the route's next target is tried.
struct MXCourier: Courier {
    let target: MXTarget
    let resolver: DNSResolver
    let loop: any EventLoop
    let pools: UpstreamPools
    let policies: MTASTSPolicies
    let logger: Logger

    var name: String { target.description }

    func deliver(_ parcel: Parcel) async throws(CourierUnavailable) -> [String: RecipientOutcome] {
        let envelope = parcel.envelope
        var byDomain: [String: [String]] = [:]
        for recipient in parcel.recipients {
            byDomain[Self.domain(of: recipient), default: []].append(recipient)
        }
        var outcomes: [String: RecipientOutcome] = [:]
        var reachedAny = false
        var unreachable: [String] = []
        for (domain, recipients) in byDomain.sorted(by: { $0.key < $1.key }) {
            let answer = await resolver.answer(domain, .mx, on: loop)
            switch MXPlan.plan(for: domain, answer) {
            case .permanent(let reply):
                for recipient in recipients { outcomes[recipient] = .failed(reply) }
            case .temporary(let reason):
                for recipient in recipients { outcomes[recipient] = .deferred(reason) }
            case .hosts(let all):
                var hosts = all
                var verifiedTLS = false
                if target.mtaSTS, let policy = await policies.policy(for: domain, port: target.mtaSTSPort, caFile: target.caFile) {
                    let allowed = all.filter(policy.allows)
                    switch policy.mode {
                    case .enforce:
                        guard !allowed.isEmpty else {
                            for recipient in recipients {
                                outcomes[recipient] = .deferred("451 4.7.5 \(domain): no MX host matches its MTA-STS policy")
                            }
                            continue
                        }
                        hosts = allowed
                        verifiedTLS = true
                    case .testing where allowed.count < all.count:
                        logger.warning("MTA-STS testing: enforce would skip MX hosts", metadata: [
                            "domain": "\(domain)", "hosts": "\(all.filter { !policy.allows($0) }.joined(separator: ","))"])
                    case .testing, .none:
                        break
                    }
                }
                switch await deliver(envelope, recipients, parcel.content, to: hosts, domain: domain, verifiedTLS: verifiedTLS) {
                case .success(let delivered):
                    reachedAny = true
                    outcomes.merge(delivered) { $1 }
                case .failure(let last):
                    unreachable.append(domain)
                    for recipient in recipients {
                        outcomes[recipient] = .deferred("451 4.4.1 \(domain): no MX host could be reached (last: \(last.description))")
                    }
                }
            }
        }
        if !reachedAny && outcomes.values.allSatisfy({ if case .deferred = $0 { true } else { false } }) && !unreachable.isEmpty {
            throw CourierUnavailable("no MX host of \(unreachable.joined(separator: ", ")) could be reached")
        }
        return outcomes
    }

    /// Tries each address of each host; the last failure when none took the transaction.
    private func deliver(_ envelope: Envelope, _ recipients: [String], _ content: ByteBuffer, to hosts: [String],
                         domain: String, verifiedTLS: Bool) async -> Result<[String: RecipientOutcome], CourierUnavailable> {
        let message = OutboundMessage(envelope, recipients: recipients, content: content, signers: target.dkim, headers: nil)
        var last = CourierUnavailable("no address for \(hosts.joined(separator: ", "))")
        for host in hosts {
            for address in await resolver.addresses(of: host, on: loop) {
                let pool = await pools.pool(for: target.smarthost(host: host, address: address, verifiedTLS: verifiedTLS))
                do {
                    return .success(try await pool.deliver(message))
                } catch {
                    last = CourierUnavailable("\(host)[\(address)]: \(error)")
                }
            }
        }
        return .failure(last)
    }

    static func domain(of address: String) -> String {
        address.split(separator: "@").last.map { String($0).lowercased() } ?? address.lowercased()
    }
}
