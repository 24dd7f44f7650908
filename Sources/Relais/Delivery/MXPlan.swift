import RelaisDNS

/// Where a domain's mail goes (RFC 5321 section 5.1, RFC 7505): its MX
/// hosts by preference with ties in random order, the domain itself when
/// it has no MX (the implicit MX), or why it cannot go anywhere: a domain
/// that does not exist or that publishes the null MX fails for good; a DNS
/// failure is temporary. Pure: the answers come in, the plan goes out.
enum MXPlan: Equatable {
    case hosts([String])
    case permanent(String)
    case temporary(String)

    static func plan(for domain: String, _ answer: Result<DNSAnswer, DNSError>,
                     shuffle: ([String]) -> [String] = { $0.shuffled() }) -> MXPlan {
        switch answer {
        case .failure(.nxdomain):
            return .permanent("550 5.1.2 \(domain): no such domain (NXDOMAIN)")
        case .failure(let error):
            return .temporary("451 4.4.3 \(domain): MX lookup failed (\(error))")
        case .success(let answer):
            let records = answer.records.compactMap { record -> (UInt16, String)? in
                guard case .mx(let preference, let host) = record else { return nil }
                return (preference, host)
            }
            if records.contains(where: { $0.1.isEmpty }) && records.count == 1 {
                return .permanent("556 5.1.10 \(domain) accepts no mail (null MX, RFC 7505)")
            }
            let usable = records.filter { !$0.1.isEmpty }
            guard !usable.isEmpty else { return .hosts([domain]) }
            let preferences = Set(usable.map(\.0)).sorted()
            return .hosts(preferences.flatMap { preference in shuffle(usable.filter { $0.0 == preference }.map(\.1)) })
        }
    }
}
