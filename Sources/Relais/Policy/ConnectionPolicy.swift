import Logging
import NIOCore
import RelaisLua
import SMTPCore

/// The policy as one connection sees it: the generation its current
/// transaction uses, the Lua state of its event loop, and its `session`
/// object there. Turns hook outcomes into verdicts and logs hook failures
/// (which become `451 4.3.0`, never an accept). Used on the connection's loop only.
final class ConnectionPolicy: SessionPolicy {
    private(set) var generation: PolicyGeneration
    private let store: PolicyStore
    private let loop: any EventLoop
    private let logger: Logger
    private let timings: HookTimings
    private var runtime: PolicyRuntime?
    private var session: SessionObject?
    private var sessionReference: LuaReference?
    private(set) var info: SessionInfo
    /// The hook call this connection waits on, to cancel when it closes.
    private var inFlight: HookRun?
    private var closed = false

    init(store: PolicyStore, loop: any EventLoop, info: SessionInfo, timings: HookTimings, logger: Logger) {
        let generation = store.generation
        self.generation = generation
        self.store = store
        self.loop = loop
        self.timings = timings
        self.logger = logger
        self.info = info
        self.info.relayAllowed = generation.configuration.relayNetworks.contains(ip: info.remoteIP)
        attach(notes: nil)
    }

    var configuration: ServerConfiguration { generation.configuration }
    var relayAllowed: Bool { info.relayAllowed || info.authUser != nil }
    var limits: SMTPLimits { configuration.limits }
    var maxErrors: Int { configuration.maxErrors }
    var hostname: String { configuration.hostname }
    var offersTLS: Bool { generation.tlsContext != nil && !info.tls }

    var authConfigured: Bool { runtime?.hasHooks(.auth) == true }
    var isAuthenticated: Bool { info.authUser != nil }
    /// RFC 4954 and the design: AUTH only over TLS, loopback clients excepted.
    var authPermitted: Bool { info.tls || IPNetwork.loopback.contains(ip: info.remoteIP) }

    /// Answers a question of the session by running its hook; `done` runs
    /// on this loop, at once when the hook does not wait.
    func ask(_ question: PolicyQuestion, _ done: @escaping (PolicyAnswer) -> Void) {
        switch question {
        case .helo(let name, _):
            helo(name) { done(PolicyAnswer(verdict: $0)) }
        case .mail(let sender, let parameters, _, _):
            let address = AddressObject(kind: .sender, path: sender, parameters: parameters, writable: true)
            run(.mail, objects: [address]) { verdict in
                done(PolicyAnswer(verdict: verdict, sender: address.rewritten ? address.path : nil))
            }
        case .rcpt(let recipient, let parameters, _):
            let address = AddressObject(kind: .recipient, path: .mailbox(recipient), parameters: parameters, writable: true)
            run(.rcpt, objects: [address]) { verdict in
                done(PolicyAnswer(verdict: verdict, recipient: address.rewritten ? address.path.mailbox : nil))
            }
        case .auth(let mechanism, let username, let password):
            authenticate(mechanism: mechanism, username: username, password: password) { done(PolicyAnswer(verdict: $0)) }
        }
    }

    /// Runs the auth hook with `creds` (username, password, mechanism); the
    /// password never reaches a log line from here.
    private func authenticate(mechanism: String, username: String, password: String,
                              _ done: @escaping (PolicyVerdict?) -> Void) {
        let creds = LuaValue.table(.record([("username", .text(username)), ("password", .text(password)),
                                            ("mechanism", .text(mechanism))]))
        run(.auth, [creds]) { [self] verdict in
            if case .accept? = verdict {
                info.authUser = username
                session?.info = info
                logger.info("authenticated", metadata: ["session": "\(info.id)", "user": "\(username)", "mechanism": "\(mechanism)"])
            } else {
                logger.warning("authentication failed", metadata: ["session": "\(info.id)", "user": "\(username)",
                                                                   "client": "\(info.remoteIP)"])
            }
            done(verdict)
        }
    }

    /// The handshake finished: the session is encrypted from here on.
    func tlsEstablished(version: String, cipher: String) {
        info.tls = true
        info.tlsVersion = version
        info.tlsCipher = cipher
        session?.info = info
    }

    func beginTransaction() {
        adopt(store.generation)
    }

    /// Moves to `newer` for the next transaction, carrying `session.notes`
    /// over (as plain data: functions do not cross states).
    func adopt(_ newer: PolicyGeneration) {
        guard newer.number != generation.number else { return }
        let notes = session.flatMap { session in runtime?.state.value(of: session.notes) }
        releaseSession()
        generation = newer
        info.relayAllowed = newer.configuration.relayNetworks.contains(ip: info.remoteIP)
        attach(notes: notes)
    }

    private func attach(notes: LuaValue?) {
        guard let runtime = generation.runtime(on: loop) else { return }
        self.runtime = runtime
        let notesReference = runtime.state.makeReference(to: notes?.tableValue.map(LuaValue.table) ?? .table(LuaTable()))
        let session = SessionObject(info: info, notes: notesReference)
        self.session = session
        sessionReference = runtime.state.register(session)
    }

    /// Lets the Lua state forget this connection; a hook still waiting is
    /// cancelled (its result, when it comes, is dropped).
    func detach() {
        closed = true
        inFlight?.cancel("the connection closed")
        releaseSession()
    }

    private func releaseSession() {
        if let runtime, let session, let sessionReference {
            runtime.state.release(sessionReference)
            runtime.state.release(session.notes)
        }
        session = nil
        sessionReference = nil
    }

    // MARK: - Stages

    func connect(_ done: @escaping (PolicyVerdict?) -> Void) {
        run(.connect, [], objects: [], done)
    }

    private func helo(_ name: String, _ done: @escaping (PolicyVerdict?) -> Void) {
        var proposed = info
        proposed.helo = name
        session?.info = proposed
        run(.helo, [.text(name)]) { [self] verdict in
            if verdict?.refusal == nil { info.helo = name }
            session?.info = info
            done(verdict)
        }
    }

    /// The data hook, then the route hook for each recipient in turn.
    func decide(_ draft: MessageDraft, _ done: @escaping (MessageDecision) -> Void) {
        guard let runtime else { return done(MessageDecision(verdict: .tempfail(PolicyVerdict.hookFailed), routes: [])) }
        let defaultRoute = configuration.effectiveDefaultRoute
        guard runtime.hasHooks(.data) || runtime.hasHooks(.route) else {
            return done(MessageDecision(verdict: nil, routes: draft.recipients.map { RecipientRoute(recipient: $0, targets: defaultRoute) }))
        }
        let message = MessageObject(draft: draft, editable: true)
        let finish = { (decision: MessageDecision) in
            message.releaseNotes(in: runtime.state)
            done(decision)
        }
        run(.data, objects: [message]) { [self] verdict in
            if let verdict, verdict.refusal != nil || verdict == .discard {
                return finish(MessageDecision(verdict: verdict, routes: []))
            }
            message.editable = false
            route(draft.recipients[...], of: message, runtime: runtime, defaultRoute: defaultRoute, routed: []) { routes in
                finish(MessageDecision(verdict: verdict, routes: routes))
            }
        }
    }

    private func route(_ recipients: ArraySlice<MailboxAddress>, of message: MessageObject, runtime: PolicyRuntime,
                       defaultRoute: [RouteTarget], routed: [RecipientRoute], _ done: @escaping ([RecipientRoute]) -> Void) {
        guard let recipient = recipients.first else { return done(routed) }
        guard !closed else { return done(routed + recipients.map { RecipientRoute(recipient: $0, refusal: PolicyVerdict.hookFailed) }) }
        timed(.route, { finish in
            runtime.route(recipient, of: message, defaultRoute: defaultRoute) { finish(($0, $1)) }
        }) { [self] (route: RecipientRoute, failure: String?) in
            if let failure { logHookFailure(.route, failure) }
            self.route(recipients.dropFirst(), of: message, runtime: runtime, defaultRoute: defaultRoute,
                       routed: routed + [route], done)
        }
    }

    // MARK: - Running hooks

    private func run(_ stage: HookStage, _ arguments: [LuaValue] = [], objects: [any LuaObject] = [],
                     _ done: @escaping (PolicyVerdict?) -> Void) {
        outcome(stage, arguments, objects: objects) { outcome in
            switch outcome {
            case .noOpinion, .routes: done(nil)
            case .verdict(let verdict): done(verdict)
            case .failed: done(.tempfail(PolicyVerdict.hookFailed))
            }
        }
    }

    /// Calls the stage's handlers with `session` first, then `arguments`,
    /// then the objects; failures are logged here.
    private func outcome(_ stage: HookStage, _ arguments: [LuaValue], objects: [any LuaObject],
                         _ done: @escaping (HookOutcome) -> Void) {
        guard let runtime, runtime.hasHooks(stage), let sessionReference else { return done(.noOpinion) }
        let state = runtime.state
        let references = objects.map { state.register($0) }
        let arguments = [.reference(sessionReference)] + arguments + references.map { .reference($0) }
        timed(stage, { finish in
            runtime.run(stage, arguments) { outcome in
                references.forEach(state.release)
                finish(outcome)
            }
        }) { [self] outcome in
            if case .failed(let message) = outcome { logHookFailure(stage, message) }
            done(outcome)
        }
    }

    /// Starts one hook call with the wall-clock limit; remembers it while
    /// it waits, so that closing the connection cancels it.
    private func timed<Result>(_ stage: HookStage, _ start: (@escaping (Result) -> Void) -> HookRun?,
                               _ done: @escaping (Result) -> Void) {
        inFlight = HookRun.timed(stage, limit: configuration.maxHookTime, on: loop, timings: timings, start) { [self] result in
            inFlight = nil
            done(result)
        }
    }

    private func logHookFailure(_ stage: HookStage, _ message: String) {
        guard !closed else { return }
        logger.error("policy hook failed; answering 451 4.3.0", metadata: [
            "stage": "\(stage.rawValue)", "session": "\(info.id)", "error": "\(message)",
        ])
    }
}

/// Where one recipient of an accepted message goes, or why it cannot.
struct RecipientRoute: Equatable {
    var recipient: MailboxAddress
    var targets: [RouteTarget] = []
    var refusal: SMTPReply?
}

/// The data and route hooks' decision about a message.
struct MessageDecision: Equatable {
    /// The data hook's verdict; nil when no hook decided.
    var verdict: PolicyVerdict?
    var routes: [RecipientRoute]
}
