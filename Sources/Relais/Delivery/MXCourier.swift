import NIOCore
import RelaisDNS

/// Delivers straight to each recipient domain's MX hosts: the plan of
/// `MXPlan`, then every address of every host in order until one takes the
/// transaction. Each MX host is an upstream of its own (pool, connection
/// limit, circuit breaker and throttling by `mx:<host>`). When no host of
/// any domain could be reached, the route's next target is tried.
struct MXCourier: Courier {
    let target: MXTarget
    let resolver: DNSResolver
    let loop: any EventLoop
    let pools: UpstreamPools

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
            let answer = await lookup(domain, .mx)
            switch MXPlan.plan(for: domain, answer) {
            case .permanent(let reply):
                for recipient in recipients { outcomes[recipient] = .failed(reply) }
            case .temporary(let reason):
                for recipient in recipients { outcomes[recipient] = .deferred(reason) }
            case .hosts(let hosts):
                if let delivered = await deliver(envelope, recipients, parcel.content, to: hosts, domain: domain) {
                    reachedAny = true
                    outcomes.merge(delivered) { $1 }
                } else {
                    unreachable.append(domain)
                    for recipient in recipients { outcomes[recipient] = .deferred("451 4.4.1 \(domain): no MX host could be reached") }
                }
            }
        }
        if !reachedAny && outcomes.values.allSatisfy({ if case .deferred = $0 { true } else { false } }) && !unreachable.isEmpty {
            throw CourierUnavailable("no MX host of \(unreachable.joined(separator: ", ")) could be reached")
        }
        return outcomes
    }

    /// Tries each address of each host; nil when none took the transaction.
    private func deliver(_ envelope: Envelope, _ recipients: [String], _ content: ByteBuffer, to hosts: [String],
                         domain: String) async -> [String: RecipientOutcome]? {
        var dsn: [String: RecipientDSN] = [:]
        for (index, address) in envelope.recipients.enumerated() where recipients.contains(address) {
            dsn[address] = envelope.dsn(index)
        }
        let message = OutboundMessage(id: envelope.id, sender: envelope.sender, recipients: recipients,
                                      content: envelope.stamped(content, targetSigners: target.dkim), smtpUTF8: envelope.smtpUTF8,
                                      body: envelope.body, ret: envelope.ret, envid: envelope.envid, dsn: dsn, headers: nil)
        for host in hosts {
            for address in await addresses(of: host) {
                let pool = await pools.pool(for: target.smarthost(host: host, address: address))
                if let outcomes = try? await pool.deliver(message) { return outcomes }
            }
        }
        return nil
    }

    /// IPv6 then IPv4 addresses of an MX host (none when it has none).
    private func addresses(of host: String) async -> [String] {
        var found: [String] = []
        for type in [DNSRecordType.aaaa, .a] {
            guard case .success(let answer) = await lookup(host, type) else { continue }
            for record in answer.records {
                switch record {
                case .a(let address), .aaaa(let address): found.append(address)
                default: break
                }
            }
        }
        return found
    }

    private func lookup(_ name: String, _ type: DNSRecordType) async -> Result<DNSAnswer, DNSError> {
        do {
            return .success(try await resolver.lookup(name, type, on: loop).get())
        } catch let error as DNSError {
            return .failure(error)
        } catch {
            return .failure(.timeout)
        }
    }

    static func domain(of address: String) -> String {
        address.split(separator: "@").last.map { String($0).lowercased() } ?? address.lowercased()
    }
}
