import NIOCore
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

/// One stage's handlers running one after another, each as a coroutine
/// that may wait on DNS, HTTP or Redis. Cancelling it (the wall-clock limit,
/// a closed connection) ends it with a failure; a late result is ignored.
final class HookRun {
    fileprivate var current: LuaCoroutine?
    private(set) var isDone = false

    fileprivate func finished() { isDone = true }

    func cancel(_ reason: String) {
        current?.cancel(reason)
    }

    /// Starts one hook call through `start` with the wall-clock limit
    /// (`lua.max_hook_time`) armed while it waits: past it the call is
    /// cancelled and fails. Records the call's time. Returns the run while
    /// it waits, nil when it ended at once.
    static func timed<Result>(_ stage: HookStage, limit: TimeAmount, on loop: any EventLoop, timings: HookTimings,
                              _ start: (@escaping (Result) -> Void) -> HookRun?,
                              _ done: @escaping (Result) -> Void) -> HookRun? {
        let started = NIODeadline.now()
        var timeout: Scheduled<Void>?
        let run = start { result in
            timeout?.cancel()
            timings.record(stage, since: started)
            done(result)
        }
        guard let run, !run.isDone else { return nil }
        let reason = "\(stage.rawValue) hook: still waiting after lua.max_hook_time (\(limit.nanoseconds / 1_000_000) ms)"
        timeout = loop.assumeIsolated().scheduleTask(in: limit) { run.cancel(reason) }
        return run
    }
}

extension PolicyRuntime {
    func hasHooks(_ stage: HookStage) -> Bool { !(hooks[stage] ?? []).isEmpty }

    /// Runs the handlers of `stage` in registration order until one returns
    /// something other than nil; `completion` gets the outcome on this
    /// state's thread, at once when no handler waits.
    @discardableResult
    func run(_ stage: HookStage, _ arguments: [LuaValue], completion: @escaping (HookOutcome) -> Void) -> HookRun {
        let run = HookRun()
        runHandler(0, stage, arguments, run) { outcome in
            run.finished()
            completion(outcome)
        }
        return run
    }

    private func runHandler(_ index: Int, _ stage: HookStage, _ arguments: [LuaValue], _ run: HookRun,
                            _ completion: @escaping (HookOutcome) -> Void) {
        let handlers = hooks[stage] ?? []
        guard index < handlers.count else { return completion(.noOpinion) }
        let handler = handlers[index]
        let coroutine = state.start(handler, arguments) { [self] outcome in
            switch outcome {
            case .failed(let message):
                completion(.failed(message))
            case .finished(let results):
                let result = results.first ?? .nil
                if result.isNil { return runHandler(index + 1, stage, arguments, run, completion) }
                do {
                    completion(try interpret(result, stage: stage))
                } catch {
                    completion(.failed("\(state.definition(of: handler)): \(stage.rawValue) hook: \(error)"))
                }
            }
        }
        // A handler that ended at once may have started the next one, which
        // is then the one to cancel: keep only a coroutine that still waits.
        if !coroutine.isDone { run.current = coroutine }
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
    @discardableResult
    func route(_ recipient: MailboxAddress, of message: MessageObject, defaultRoute: [RouteTarget],
               completion: @escaping (RecipientRoute, _ failure: String?) -> Void) -> HookRun? {
        guard hasHooks(.route) else {
            completion(RecipientRoute(recipient: recipient, targets: defaultRoute), nil)
            return nil
        }
        let address = AddressObject(kind: .recipient, path: .mailbox(recipient), parameters: ESMTPParameters(), writable: false)
        let references = [state.register(message), state.register(address)]
        return run(.route, references.map { .reference($0) }) { [state] outcome in
            references.forEach(state.release)
            switch outcome {
            case .noOpinion, .verdict(.accept):
                completion(RecipientRoute(recipient: recipient, targets: defaultRoute), nil)
            case .routes(let targets):
                completion(RecipientRoute(recipient: recipient, targets: targets), nil)
            case .verdict(let refusal):
                completion(RecipientRoute(recipient: recipient, refusal: refusal.refusal ?? PolicyVerdict.hookFailed), nil)
            case .failed(let failure):
                completion(RecipientRoute(recipient: recipient, refusal: PolicyVerdict.hookFailed), failure)
            }
        }
    }
}
