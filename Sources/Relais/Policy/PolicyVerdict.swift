import RelaisLua
import SMTPCore

/// What a hook decided. `nil` from a hook means "no opinion" and is not a
/// verdict; the next handler of the stage, or the default, decides.
enum PolicyVerdict: Equatable, Sendable {
    case accept(text: String?)
    case reject(SMTPReply)
    case tempfail(SMTPReply)
    case disconnect(SMTPReply)
    /// Data stage only: answer 250, deliver nothing.
    case discard

    var name: String {
        switch self {
        case .accept: return "accept"
        case .reject: return "reject"
        case .tempfail: return "tempfail"
        case .disconnect: return "disconnect"
        case .discard: return "discard"
        }
    }

    /// The reply for a refusal; nil for accept and discard.
    var refusal: SMTPReply? {
        switch self {
        case .reject(let reply), .tempfail(let reply), .disconnect(let reply): return reply
        case .accept, .discard: return nil
        }
    }

    /// Builds the reply of `relais.reject/tempfail/disconnect(code, text)`:
    /// the code must be of the verdict's class; a text without an enhanced
    /// status code gets the default one.
    static func reply(code: Int64?, text: String?, defaultCode: Int, defaultEnhanced: EnhancedStatusCode,
                      defaultText: String, allowed: ClosedRange<Int>, function: String) throws -> SMTPReply {
        let code = Int(code ?? Int64(defaultCode))
        guard allowed.contains(code) else {
            throw LuaError("\(function): code \(code) is not in \(allowed.lowerBound)-\(allowed.upperBound)")
        }
        let text = text ?? defaultText
        guard !text.contains("\r"), !text.contains("\n") else { throw LuaError("\(function): text must be one line") }
        let words = text.split(separator: " ", maxSplits: 1)
        if let first = words.first, let enhanced = EnhancedStatusCode(parsing: first) {
            guard enhanced.statusClass == code / 100 else {
                throw LuaError("\(function): enhanced code \(enhanced) does not match \(code)")
            }
            return SMTPReply(code, enhanced, words.count > 1 ? String(words[1]) : "")
        }
        let enhanced = code / 100 == defaultEnhanced.statusClass
            ? defaultEnhanced : EnhancedStatusCode(code / 100, defaultEnhanced.subject, defaultEnhanced.detail)
        return SMTPReply(code, enhanced, text)
    }

    /// The reply when a hook fails (error, budget): never an accept.
    static let hookFailed = SMTPReply(451, EnhancedStatusCode(4, 3, 0), "Error: local policy failure; try again later")
}

/// A verdict as the Lua value `relais.reject(...)` and friends return.
final class VerdictObject: LuaObject {
    let verdict: PolicyVerdict

    init(_ verdict: PolicyVerdict) { self.verdict = verdict }

    var luaTypeName: String {
        if let reply = verdict.refusal { return "relais.\(verdict.name)(\(reply.code), \"\(reply.text)\")" }
        if case .accept(let text?) = verdict { return "relais.accept(\"\(text)\")" }
        return "relais.\(verdict.name)()"
    }

    var luaMethodNames: Set<String> { [] }

    func luaField(_ name: String, state: LuaState) throws -> LuaValue {
        switch name {
        case "verdict": return .text(verdict.name)
        case "code": return verdict.refusal.map { .integer(Int64($0.code)) } ?? .nil
        case "text": return verdict.refusal.map { .text($0.text) } ?? .nil
        default: return .nil
        }
    }

    func luaCall(_ method: String, _ arguments: [LuaValue], state: LuaState) throws -> [LuaValue] { [] }
}
