import RelaisLua

/// What a policy knows about the connection (`session` in Lua).
struct SessionInfo: Sendable {
    var id: String
    var remoteIP: String
    var remotePort: Int
    var localIP: String
    var localPort: Int
    var helo: String?
    var tls = false
    var tlsVersion: String?
    var tlsCipher: String?
    var authUser: String?
    var relayAllowed: Bool
}

/// `session` in Lua: read-only connection facts plus `notes`, a table kept
/// for the whole connection.
final class SessionObject: LuaObject {
    var info: SessionInfo
    let notes: LuaReference

    init(info: SessionInfo, notes: LuaReference) {
        self.info = info
        self.notes = notes
    }

    var luaTypeName: String { "session \(info.id)" }
    var luaMethodNames: Set<String> { [] }

    func luaField(_ name: String, state: LuaState) throws -> LuaValue {
        switch name {
        case "id": return .text(info.id)
        case "remote_ip": return .text(info.remoteIP)
        case "remote_port": return .integer(Int64(info.remotePort))
        case "local_ip": return .text(info.localIP)
        case "local_port": return .integer(Int64(info.localPort))
        case "helo": return info.helo.map { .text($0) } ?? .nil
        case "tls": return .boolean(info.tls)
        case "tls_version": return info.tlsVersion.map { .text($0) } ?? .nil
        case "tls_cipher": return info.tlsCipher.map { .text($0) } ?? .nil
        case "auth_user": return info.authUser.map { .text($0) } ?? .nil
        case "relay_allowed": return .boolean(info.relayAllowed || info.authUser != nil)
        case "notes": return .reference(notes)
        default: return .nil
        }
    }

    func luaCall(_ method: String, _ arguments: [LuaValue], state: LuaState) throws -> [LuaValue] { [] }
}
