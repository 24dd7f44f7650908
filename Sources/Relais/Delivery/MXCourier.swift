import Logging
import NIOCore
import RelaisDNS

/// Delivers straight to each recipient domain's MX hosts: the plan of
/// `MXPlan`, then every address of every host in order until one takes
/// the transaction, each host's TLS as `MXHostSecurity` decides (DANE,
/// the domain's MTA-STS policy, or the target's setting). Each MX host is an upstream of its own (pool, connection
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
            case .hosts(let hosts):
                var enforced: MTASTSPolicy?
                if target.mtaSTS, let policy = await policies.policy(for: domain, port: target.mtaSTSPort, caFile: target.caFile) {
                    let skipped = hosts.filter { !policy.allows($0) }
                    if policy.mode == .enforce {
                        enforced = policy
                    } else if policy.mode == .testing && !skipped.isEmpty {
                        logger.warning("MTA-STS testing: enforce would skip MX hosts", metadata: [
                            "domain": "\(domain)", "hosts": "\(skipped.joined(separator: ","))"])
                    }
                }
                // TLSA records count only below a validated MX answer (RFC 7672 2.2.1).
                let mxValidated = target.usesDANE && ((try? answer.get())?.authenticated ?? false)
                let attempt = await deliver(envelope, recipients, parcel.content, to: hosts, domain: domain,
                                            mxValidated: mxValidated, enforced: enforced)
                switch attempt {
                case .success(let delivered):
                    reachedAny = true
                    outcomes.merge(delivered) { $1 }
                case .failure(let failure):
                    if !failure.policyRefusedAll { unreachable.append("\(domain) (last: \(failure.last.description))") }
                    for recipient in recipients { outcomes[recipient] = .deferred(failure.reply(domain)) }
                }
            }
        }
        if !reachedAny && outcomes.values.allSatisfy({ if case .deferred = $0 { true } else { false } }) && !unreachable.isEmpty {
            throw CourierUnavailable("no MX host could be reached for \(unreachable.joined(separator: "; "))")
        }
        return outcomes
    }

    /// Why no MX host of a domain took the transaction.
    private struct HostsFailure: Error {
        var last: CourierUnavailable
        /// Every host was left out by the MTA-STS policy (none was tried).
        var policyRefusedAll: Bool

        func reply(_ domain: String) -> String {
            policyRefusedAll ? "451 4.7.5 \(domain): no MX host matches its MTA-STS policy"
                             : "451 4.4.1 \(domain): no MX host could be reached (last: \(last.description))"
        }
    }

    /// Tries each address of each host, each protected as `MXHostSecurity`
    /// decides (the TLSA lookup when the MX and address answers were
    /// validated); the last failure when none took the transaction.
    private func deliver(_ envelope: Envelope, _ recipients: [String], _ content: ByteBuffer, to hosts: [String], domain: String,
                         mxValidated: Bool, enforced: MTASTSPolicy?) async -> Result<[String: RecipientOutcome], HostsFailure> {
        let message = OutboundMessage(envelope, recipients: recipients, content: content, signers: target.dkim, headers: nil)
        var failure = HostsFailure(last: CourierUnavailable("no address for \(hosts.joined(separator: ", "))"), policyRefusedAll: true)
        for host in hosts {
            let (addresses, security, _) = await Self.lookUp(host, port: target.port, mxValidated: mxValidated, enforced: enforced,
                                                             resolver: resolver, loop: loop)
            switch security {
            case .outsidePolicy:
                continue
            case .unusable(let reason):
                logger.warning("MX host skipped", metadata: ["domain": "\(domain)", "reason": "\(reason)"])
                failure = HostsFailure(last: CourierUnavailable(reason), policyRefusedAll: false)
                continue
            case .configured, .verifiedName, .dane, .encryptedOnly:
                failure.policyRefusedAll = false
            }
            for address in addresses.addresses {
                let pool = await pools.pool(for: target.smarthost(host: host, address: address, domain: domain, security: security))
                do {
                    return .success(try await pool.deliver(message))
                } catch {
                    failure.last = CourierUnavailable("\(host)[\(address)]: \(error)")
                }
            }
        }
        return .failure(failure)
    }

    /// A host's addresses and how its connection is protected: the TLSA
    /// lookup (`_<port>._tcp.<host>`) is made only when the MX answer
    /// (`mxValidated`) and the address answers were DNSSEC-validated
    /// (RFC 7672 2.2); `tlsaAsked` says whether it was.
    static func lookUp(_ host: String, port: Int, mxValidated: Bool, enforced: MTASTSPolicy?, resolver: DNSResolver,
                       loop: any EventLoop) async -> (addresses: HostAddresses, security: MXHostSecurity, tlsaAsked: Bool) {
        let addresses = await resolver.addresses(of: host, on: loop)
        let tlsa = mxValidated && addresses.authenticated ? await resolver.answer("_\(port)._tcp.\(host)", .tlsa, on: loop) : nil
        return (addresses, MXHostSecurity.decide(host: host, tlsa: tlsa, enforced: enforced), tlsa != nil)
    }

    static func domain(of address: String) -> String {
        address.split(separator: "@").last.map { String($0).lowercased() } ?? address.lowercased()
    }
}
