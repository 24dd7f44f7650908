import RelaisLua

/// Where a recipient's copy goes, as the `route` hook chose it and as it is
/// stored with the queued message (so delivery never runs Lua again).
public enum RouteTarget: Codable, Hashable, Sendable, CustomStringConvertible {
    /// A local maildir (absolute path).
    case maildir(path: String)
    /// An upstream SMTP server.
    case smarthost(Smarthost)

    public var description: String {
        switch self {
        case .maildir(let path): return "maildir:\(path)"
        case .smarthost(let smarthost): return smarthost.description
        }
    }
}

/// A route target as the Lua value `relais.maildir(path)` returns.
final class RouteTargetObject: LuaObject {
    let target: RouteTarget

    init(_ target: RouteTarget) { self.target = target }

    var luaTypeName: String { "relais.\(target)" }
    var luaMethodNames: Set<String> { [] }

    func luaField(_ name: String, state: LuaState) throws -> LuaValue {
        switch (name, target) {
        case ("kind", .maildir): return .text("maildir")
        case ("path", .maildir(let path)): return .text(path)
        case ("kind", .smarthost): return .text("smarthost")
        case ("name", .smarthost(let smarthost)): return .text(smarthost.name)
        case ("host", .smarthost(let smarthost)): return .text(smarthost.host)
        case ("port", .smarthost(let smarthost)): return .integer(Int64(smarthost.port))
        default: return .nil
        }
    }

    func luaCall(_ method: String, _ arguments: [LuaValue], state: LuaState) throws -> [LuaValue] { [] }
}
