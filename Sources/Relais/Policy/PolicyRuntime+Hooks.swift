import RelaisLua
import SMTPCore

/// What running the handlers of one stage came to.
enum HookOutcome: Equatable {
    /// Every handler returned nil (or there are none): the default applies.
    case noOpinion
    case verdict(PolicyVerdict)
    /// Route stage: the targets, in failover order.
    case routes([RouteTarget])
    /// A handler raised an error or exhausted its budget; the message has `file:line`.
    case failed(String)
}

extension PolicyRuntime {
    func hasHooks(_ stage: HookStage) -> Bool { !(hooks[stage] ?? []).isEmpty }

    /// Runs the handlers of `stage` in registration order until one returns
    /// something other than nil.
    func run(_ stage: HookStage, _ arguments: [LuaValue]) -> HookOutcome {
        for handler in hooks[stage] ?? [] {
            let result: LuaValue
            do {
                result = try state.call(handler, arguments).first ?? .nil
            } catch {
                return .failed("\(error)")
            }
            if result.isNil { continue }
            do {
                return try interpret(result, stage: stage)
            } catch {
                return .failed("\(state.definition(of: handler)): \(stage.rawValue) hook: \(error)")
            }
        }
        return .noOpinion
    }

    private func interpret(_ result: LuaValue, stage: HookStage) throws -> HookOutcome {
        if stage == .auth, case .boolean(let ok) = result {
            return .verdict(ok ? .accept(text: nil) : .reject(.authenticationFailed))
        }
        if case .object(let id) = result, let verdict = (state.object(id) as? VerdictObject)?.verdict {
            switch (stage, verdict) {
            case (.data, .discard), (_, .accept), (_, .reject), (_, .tempfail), (_, .disconnect):
                if stage == .route, case .accept = verdict { return .noOpinion }
                if stage == .route, case .disconnect = verdict {
                    throw LuaError("relais.disconnect() cannot route a recipient; use relais.reject()")
                }
                return .verdict(verdict)
            default:
                throw LuaError("relais.discard() is for the data hook only")
            }
        }
        if stage == .route { return .routes(try routeTargets(result)) }
        throw LuaError("returned \(result.typeName); return a verdict such as relais.reject(...)"
            + (stage == .auth ? ", true, false" : "") + ", or nil")
    }

    /// Runs the route hook for `recipient` of `message`: the targets it
    /// chose, `defaultRoute` when no handler decides, or the refusal; a
    /// failing hook also refuses (451) and its `file:line` message comes back.
    func route(_ recipient: MailboxAddress, of message: MessageObject,
               defaultRoute: [RouteTarget]) -> (RecipientRoute, failure: String?) {
        guard hasHooks(.route) else { return (RecipientRoute(recipient: recipient, targets: defaultRoute), nil) }
        let address = AddressObject(kind: .recipient, path: .mailbox(recipient), parameters: ESMTPParameters(), writable: false)
        let references = [state.register(message), state.register(address)]
        defer { references.forEach(state.release) }
        switch run(.route, references.map { .reference($0) }) {
        case .noOpinion, .verdict(.accept):
            return (RecipientRoute(recipient: recipient, targets: defaultRoute), nil)
        case .routes(let targets):
            return (RecipientRoute(recipient: recipient, targets: targets), nil)
        case .verdict(let refusal):
            return (RecipientRoute(recipient: recipient, refusal: refusal.refusal ?? PolicyVerdict.hookFailed), nil)
        case .failed(let failure):
            return (RecipientRoute(recipient: recipient, refusal: PolicyVerdict.hookFailed), failure)
        }
    }
}
