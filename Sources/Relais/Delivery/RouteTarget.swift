/// Where a recipient's copy goes, as the `route` hook chose it and as it is
/// stored with the queued message (so delivery never runs Lua again).
public enum RouteTarget: Codable, Hashable, Sendable, CustomStringConvertible {
    /// A local maildir (absolute path).
    case maildir(path: String)
    /// An upstream SMTP server.
    case smarthost(Smarthost)
    /// The MX hosts of each recipient's domain.
    case mx(MXTarget)

    public var description: String {
        switch self {
        case .maildir(let path): return "maildir:\(path)"
        case .smarthost(let smarthost): return smarthost.description
        case .mx(let target): return target.description
        }
    }
}

extension RouteTarget {
    /// The DKIM signers (labels) whose signatures mail sent here carries.
    var dkimSigners: [String] {
        switch self {
        case .maildir: []
        case .smarthost(let smarthost): smarthost.dkim ?? []
        case .mx(let target): target.dkim ?? []
        }
    }
}

extension Array where Element == RouteTarget {
    /// The names of the smarthosts in this route, in failover order.
    var smarthostNames: [String] {
        compactMap { target in
            if case .smarthost(let smarthost) = target { return smarthost.name }
            return nil
        }
    }
}
