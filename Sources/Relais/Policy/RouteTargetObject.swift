import RelaisLua

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
