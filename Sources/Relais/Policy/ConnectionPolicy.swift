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

    /// Runs the auth hook with `creds` (username, password, mechanism); the
    /// password never reaches a log line from here.
    func authenticate(mechanism: String, username: String, password: String) -> PolicyVerdict? {
        let creds = LuaValue.table(.record([("username", .text(username)), ("password", .text(password)),
                                            ("mechanism", .text(mechanism))]))
        let verdict = run(.auth, [creds])
        if case .accept? = verdict {
            info.authUser = username
            session?.info = info
            logger.info("authenticated", metadata: ["session": "\(info.id)", "user": "\(username)", "mechanism": "\(mechanism)"])
        } else {
            logger.warning("authentication failed", metadata: ["session": "\(info.id)", "user": "\(username)",
                                                               "client": "\(info.remoteIP)"])
        }
        return verdict
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
        detach()
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

    /// Lets the Lua state forget this connection.
    func detach() {
        if let runtime, let session, let sessionReference {
            runtime.state.release(sessionReference)
            runtime.state.release(session.notes)
        }
        session = nil
        sessionReference = nil
    }

    // MARK: - Stages

    func connect() -> PolicyVerdict? {
        run(.connect, [])
    }

    func helo(_ name: String) -> PolicyVerdict? {
        var proposed = info
        proposed.helo = name
        session?.info = proposed
        let verdict = run(.helo, [.text(name)])
        if verdict?.refusal == nil { info.helo = name }
        session?.info = info
        return verdict
    }

    func mail(_ sender: inout ReversePath, _ parameters: ESMTPParameters) -> PolicyVerdict? {
        let address = AddressObject(kind: .sender, path: sender, parameters: parameters, writable: true)
        let verdict = run(.mail, objects: [address])
        if address.rewritten { sender = address.path }
        return verdict
    }

    func rcpt(_ recipient: inout MailboxAddress, _ parameters: ESMTPParameters) -> PolicyVerdict? {
        let address = AddressObject(kind: .recipient, path: .mailbox(recipient), parameters: parameters, writable: true)
        let verdict = run(.rcpt, objects: [address])
        if address.rewritten, let mailbox = address.path.mailbox { recipient = mailbox }
        return verdict
    }

    /// The data hook, then the route hook for each recipient.
    func decide(_ draft: MessageDraft) -> MessageDecision {
        guard let runtime else { return MessageDecision(verdict: .tempfail(PolicyVerdict.hookFailed), routes: []) }
        guard runtime.hasHooks(.data) || runtime.hasHooks(.route) else {
            let route = configuration.effectiveDefaultRoute
            return MessageDecision(verdict: nil, routes: draft.recipients.map { RecipientRoute(recipient: $0, targets: route) })
        }
        let notes = runtime.state.makeTableReference()
        defer { runtime.state.release(notes) }
        let message = MessageObject(draft: draft, notes: notes, editable: true)
        let verdict = run(.data, objects: [message])
        if let verdict, verdict.refusal != nil || verdict == .discard {
            return MessageDecision(verdict: verdict, routes: [])
        }
        message.editable = false
        let routes = draft.recipients.map { recipient in
            let (route, failure) = timings.measure(.route) {
                runtime.route(recipient, of: message, defaultRoute: configuration.effectiveDefaultRoute)
            }
            if let failure { logHookFailure(.route, failure) }
            return route
        }
        return MessageDecision(verdict: verdict, routes: routes)
    }

    // MARK: - Running hooks

    private func run(_ stage: HookStage, _ arguments: [LuaValue] = [], objects: [any LuaObject] = []) -> PolicyVerdict? {
        switch outcome(stage, arguments, objects: objects) {
        case .noOpinion, .routes: return nil
        case .verdict(let verdict): return verdict
        case .failed: return .tempfail(PolicyVerdict.hookFailed)
        }
    }

    /// Calls the stage's handlers with `session` first, then `arguments`,
    /// then the objects; failures are logged here.
    private func outcome(_ stage: HookStage, _ arguments: [LuaValue], objects: [any LuaObject]) -> HookOutcome {
        guard let runtime, runtime.hasHooks(stage), let sessionReference else { return .noOpinion }
        let state = runtime.state
        let references = objects.map { state.register($0) }
        defer { references.forEach(state.release) }
        let outcome = timings.measure(stage) {
            runtime.run(stage, [.reference(sessionReference)] + arguments + references.map { .reference($0) })
        }
        if case .failed(let message) = outcome { logHookFailure(stage, message) }
        return outcome
    }

    private func logHookFailure(_ stage: HookStage, _ message: String) {
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
