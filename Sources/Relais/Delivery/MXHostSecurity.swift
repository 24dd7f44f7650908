import RelaisDNS
import RelaisTLS

/// How the connection to one MX host is protected, decided before
/// connecting: DANE (RFC 7672 section 2.2) wins over MTA-STS (RFC 8461
/// section 4), which wins over `relais.mx{ tls }`. Pure: the lookups come
/// in, the decision goes out.
enum MXHostSecurity: Equatable {
    /// As `relais.mx{ tls }` says.
    case configured
    /// STARTTLS with a certificate valid for the MX host name (an MTA-STS
    /// policy in enforce mode).
    case verifiedName
    /// STARTTLS, the server authenticated by these TLSA records.
    case dane([TLSARecord])
    /// STARTTLS required but not authenticated: a validated TLSA set with
    /// no record usable for SMTP (RFC 7672 section 2.2).
    case encryptedOnly
    /// The host is not to be used: its TLSA lookup failed (a bogus or
    /// unanswerable signed zone), said in the text.
    case unusable(String)
    /// The host is not named by the domain's enforced MTA-STS policy.
    case outsidePolicy

    /// `tlsa` is the answer for `_<port>._tcp.<host>`, nil when it was not
    /// asked (DANE off, or the MX or address answers were not validated);
    /// `enforced` the domain's MTA-STS policy when in enforce mode.
    static func decide(host: String, tlsa: Result<DNSAnswer, DNSError>?, enforced: MTASTSPolicy?) -> MXHostSecurity {
        switch tlsa {
        case .failure(.nxdomain), nil:
            break
        case .failure(let error):
            return .unusable("\(host): TLSA lookup failed (\(error)); DANE forbids using the host")
        case .success(let answer) where answer.authenticated && !answer.records.isEmpty:
            let usable = answer.records.compactMap { record -> TLSARecord? in
                guard case .tlsa(let usage, let selector, let matchingType, let data) = record else { return nil }
                let tlsa = TLSARecord(usage: usage, selector: selector, matchingType: matchingType, data: data)
                return tlsa.isUsableForSMTP ? tlsa : nil
            }
            return usable.isEmpty ? .encryptedOnly : .dane(usable)
        case .success:
            break
        }
        guard let enforced else { return .configured }
        return enforced.allows(host) ? .verifiedName : .outsidePolicy
    }

    /// For `relais simulate` and the log.
    var description: String {
        switch self {
        case .configured: "TLS as configured"
        case .verifiedName: "STARTTLS verified for the host name (MTA-STS enforce)"
        case .dane(let records): "STARTTLS authenticated by DANE (TLSA \(records.map(\.presentation).joined(separator: "; ")))"
        case .encryptedOnly: "STARTTLS required, unauthenticated (no usable TLSA record)"
        case .unusable(let reason): "not used: \(reason)"
        case .outsidePolicy: "not used: not named by the MTA-STS policy"
        }
    }
}
