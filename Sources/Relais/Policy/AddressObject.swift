import RelaisLua
import SMTPCore

/// `sender` and `rcpt` in Lua. Assigning `address` rewrites the envelope
/// (checked like an address on the wire) where the stage allows it.
final class AddressObject: LuaObject {
    enum Kind { case sender, recipient }

    let kind: Kind
    private(set) var path: ReversePath
    let parameters: ESMTPParameters
    let writable: Bool
    private(set) var rewritten = false

    init(kind: Kind, path: ReversePath, parameters: ESMTPParameters, writable: Bool) {
        self.kind = kind
        self.path = path
        self.parameters = parameters
        self.writable = writable
    }

    var luaTypeName: String { "<\(path)>" }
    var luaMethodNames: Set<String> { [] }

    func luaField(_ name: String, state: LuaState) throws -> LuaValue {
        switch name {
        case "address": return .text(path.description)
        case "localpart": return path.mailbox.map { .text($0.localPart) } ?? .text("")
        case "domain": return path.mailbox.map { .text($0.domain.lowercased()) } ?? .text("")
        case "params":
            return .table(.record(parameters.parameters.map { ($0.keyword, $0.value.map { .text($0) } ?? .boolean(true)) }))
        default: return .nil
        }
    }

    func luaSetField(_ name: String, _ value: LuaValue, state: LuaState) throws {
        guard name == "address" else { throw LuaError("only address can be assigned (\(name) follows from it)") }
        guard writable else { throw LuaError("the address cannot be rewritten at this stage") }
        guard let text = value.stringValue else { throw LuaError("address must be a string, not \(value.typeName)") }
        if text.isEmpty {
            guard kind == .sender else { throw LuaError("a recipient address cannot be empty") }
            path = .null
        } else {
            do {
                path = .mailbox(try PathParser().mailbox(Substring(text)))
            } catch {
                throw LuaError("invalid address \(text.debugDescription): \(error.reason)")
            }
        }
        rewritten = true
    }

    func luaCall(_ method: String, _ arguments: [LuaValue], state: LuaState) throws -> [LuaValue] { [] }
}
