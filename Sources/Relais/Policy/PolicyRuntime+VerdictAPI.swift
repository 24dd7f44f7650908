import RelaisLua
import SMTPCore

/// `relais.accept`, `reject`, `tempfail`, `disconnect` and `discard`: the
/// verdicts hooks return.
extension PolicyRuntime {
    func verdictAPI() -> [(String, LuaValue)] {
        var api: [(String, LuaValue)] = [
            ("accept", state.makeFunction { state in Self.push(.accept(text: state.argument(1).stringValue), state) }),
            ("discard", state.makeFunction { state in Self.push(.discard, state) }),
        ]
        let refusals: [(String, (SMTPReply) -> PolicyVerdict, Int, EnhancedStatusCode, String, ClosedRange<Int>)] = [
            ("reject", PolicyVerdict.reject, 550, EnhancedStatusCode(5, 7, 1), "Rejected by policy", 500...599),
            ("tempfail", PolicyVerdict.tempfail, 451, EnhancedStatusCode(4, 7, 1), "Try again later", 400...499),
            ("disconnect", PolicyVerdict.disconnect, 421, EnhancedStatusCode(4, 7, 0), "Closing connection", 400...599),
        ]
        for (name, verdict, code, enhanced, text, allowed) in refusals {
            api.append((name, state.makeFunction { state in
                let (given, givenText) = Self.codeAndText(state)
                return Self.push(verdict(try PolicyVerdict.reply(
                    code: given, text: givenText, defaultCode: code, defaultEnhanced: enhanced,
                    defaultText: text, allowed: allowed, function: "relais.\(name)")), state)
            }))
        }
        return api
    }

    /// `(code, text)` or `(text)`.
    private static func codeAndText(_ state: LuaState) -> (Int64?, String?) {
        if case .string = state.argument(1) { return (nil, state.argument(1).stringValue) }
        return (state.argument(1).integerValue, state.argument(2).stringValue)
    }

    private static func push(_ verdict: PolicyVerdict, _ state: LuaState) -> Int {
        state.push(object: VerdictObject(verdict))
        return 1
    }
}
