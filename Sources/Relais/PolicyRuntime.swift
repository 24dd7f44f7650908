import Foundation
import Logging
import RelaisLua
import SMTPCore

/// The stages at which a policy can hook in.
public enum HookStage: String, CaseIterable, Sendable {
    case connect, helo, auth, mail, rcpt, data, route
}

/// One loaded policy in one Lua state: the `relais` API, the hooks the
/// script registered, and what `relais.config` set. A generation holds one
/// per event loop; `check` and `simulate` use one directly.
final class PolicyRuntime {
    let state: LuaState
    let source: PolicySource
    private(set) var hooks: [HookStage: [LuaReference]] = [:]
    /// Each `relais.config{...}` call, in order; later calls win.
    private(set) var settings: [PolicySettings] = []
    /// The config file and every file it required or read.
    private(set) var watchedFiles: [String] = []
    /// Route targets the policy made while loading, for `relais check`.
    private(set) var declaredTargets: [RouteTarget] = []
    /// Upstream credentials by smarthost name.
    private(set) var secrets: [String: SmarthostSecret] = [:]
    private var loading = true
    private let logger: Logger
    private var modules: [String: LuaValue] = [:]
    private var modulesLoading: Set<String> = []

    /// Whether `relais.log` and `print` are silent while the policy loads
    /// (a generation loads it once per event loop; one copy speaks).
    private let quietWhileLoading: Bool

    /// Loads and runs the policy. Errors carry `file:line`.
    init(source: PolicySource, limits: LuaLimits, logger: Logger, quietWhileLoading: Bool = false) throws {
        self.source = source
        self.logger = logger
        self.quietWhileLoading = quietWhileLoading
        self.state = try LuaState(limits: limits)
        installAPI()
        let text: [UInt8]
        switch source {
        case .file(let path):
            watchedFiles.append(FilePaths.absolute(path))
            text = try Self.readSource(path)
        case .embedded(_, let body):
            text = Array(body.utf8)
        }
        try state.run(text, chunkName: source.chunkName)
        loading = false
    }

    /// `file:line` of each handler, per stage, for `relais check`.
    var hookLocations: [HookStage: [String]] {
        hooks.mapValues { $0.map { state.definition(of: $0) } }
    }

    private static func readSource(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LuaError("\(path): cannot read the file")
        }
        return Array(data)
    }

    // MARK: - The relais API

    private func installAPI() {
        var api: [(String, LuaValue)] = []
        func add(_ name: String, _ function: @escaping LuaState.SwiftFunction) {
            api.append((name, state.makeFunction(function)))
        }
        add("config") { [unowned self] state in
            try requireLoading("relais.config")
            guard let table = state.argument(1).tableValue else { throw LuaError("relais.config expects a table") }
            settings.append(try PolicySettings.parse(table, targets: routeTargets))
            return 0
        }
        add("on") { [unowned self] state in
            try requireLoading("relais.on")
            guard let name = state.argument(1).stringValue, let stage = HookStage(rawValue: name) else {
                let names = HookStage.allCases.map(\.rawValue).joined(separator: ", ")
                throw LuaError("relais.on: unknown stage \(state.argument(1).stringValue ?? state.argument(1).typeName) (stages: \(names))")
            }
            guard case .function(let function) = state.argument(2) else {
                throw LuaError("relais.on(\"\(name)\", ...) expects a function")
            }
            hooks[stage, default: []].append(function)
            return 0
        }
        add("accept") { state in
            try Self.push(.accept(text: state.argument(1).stringValue), state)
        }
        let refusals: [(String, (SMTPReply) -> PolicyVerdict, Int, EnhancedStatusCode, String, ClosedRange<Int>)] = [
            ("reject", PolicyVerdict.reject, 550, EnhancedStatusCode(5, 7, 1), "Rejected by policy", 500...599),
            ("tempfail", PolicyVerdict.tempfail, 451, EnhancedStatusCode(4, 7, 1), "Try again later", 400...499),
            ("disconnect", PolicyVerdict.disconnect, 421, EnhancedStatusCode(4, 7, 0), "Closing connection", 400...599),
        ]
        for (name, verdict, code, enhanced, text, allowed) in refusals {
            add(name) { state in
                let (given, givenText) = Self.codeAndText(state)
                return try Self.push(verdict(PolicyVerdict.reply(
                    code: given, text: givenText, defaultCode: code, defaultEnhanced: enhanced,
                    defaultText: text, allowed: allowed, function: "relais.\(name)")), state)
            }
        }
        add("discard") { state in
            try Self.push(.discard, state)
        }
        add("maildir") { [unowned self] state in
            guard let path = state.argument(1).stringValue, !path.isEmpty else {
                throw LuaError("relais.maildir expects a folder path")
            }
            let target = RouteTarget.maildir(path: FilePaths.absolute(path))
            if loading && !declaredTargets.contains(target) { declaredTargets.append(target) }
            state.push(object: RouteTargetObject(target))
            return 1
        }
        add("smarthost") { [unowned self] state in
            guard let table = state.argument(1).tableValue else { throw LuaError("relais.smarthost expects a table") }
            try pushSmarthost(table, state)
            return 1
        }
        add("preset") { [unowned self] state in
            guard let name = state.argument(1).stringValue, PresetSources.presets[name] != nil else {
                let known = PresetSources.presets.keys.sorted().joined(separator: ", ")
                throw LuaError("relais.preset: unknown preset \(state.argument(1).stringValue.map { $0.debugDescription } ?? state.argument(1).typeName) (presets: \(known))")
            }
            guard case .function(let build) = try require("presets." + name).tableValue?["build"] ?? .nil else {
                throw LuaError("relais.preset: presets.\(name) has no build function")
            }
            let options = state.argument(2).isNil ? LuaValue.table(LuaTable()) : state.argument(2)
            guard let table = try state.call(build, [options]).first?.tableValue else {
                throw LuaError("relais.preset: presets.\(name) built nothing")
            }
            try pushSmarthost(table, state)
            return 1
        }
        add("oauth2") { state in
            guard let table = state.argument(1).tableValue else { throw LuaError("relais.oauth2 expects a table") }
            state.push(object: OAuth2Object(try OAuth2TokenSource.parse(table)))
            return 1
        }
        add("ses_smtp_password") { state in
            guard let secret = state.argument(1).stringValue, let region = state.argument(2).stringValue else {
                throw LuaError("relais.ses_smtp_password expects the secret access key and the region")
            }
            state.push(SESCredentials.smtpPassword(secretAccessKey: secret, region: region))
            return 1
        }
        add("env") { state in
            guard let name = state.argument(1).stringValue else { throw LuaError("relais.env expects a variable name") }
            if let value = ProcessInfo.processInfo.environment[name] {
                state.push(value)
            } else {
                state.push(state.argument(2))
            }
            return 1
        }
        add("in_networks") { state in
            guard let ip = state.argument(1).stringValue else { throw LuaError("relais.in_networks expects an IP address") }
            let list: [LuaValue]
            switch state.argument(2) {
            case .string: list = [state.argument(2)]
            case .table(let table): list = table.array
            default: throw LuaError("relais.in_networks expects a list of networks")
            }
            let networks = try list.map { item -> IPNetwork in
                guard let text = item.stringValue, let network = IPNetwork(cidr: text) else {
                    throw LuaError("relais.in_networks: \(item.stringValue.map { $0.debugDescription } ?? item.typeName) is not a network like 192.0.2.0/24")
                }
                return network
            }
            state.push(.boolean(networks.contains(ip: ip)))
            return 1
        }
        add("read_file") { [unowned self] state in
            state.push(bytes: try readPolicyFile(state.argument(1), function: "relais.read_file"))
            return 1
        }
        add("read_lines") { [unowned self] state in
            let bytes = try readPolicyFile(state.argument(1), function: "relais.read_lines")
            let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line -> LuaValue in
                .string(LuaString(bytes: Array(line.last == UInt8(ascii: "\r") ? line.dropLast() : line)))
            }
            let trimmed = lines.last == .text("") ? Array(lines.dropLast()) : lines
            state.push(.table(.array(trimmed)))
            return 1
        }
        var log: [(String, LuaValue)] = []
        for (name, level) in [("info", Logger.Level.info), ("warn", .warning), ("error", .error)] {
            log.append((name, state.makeFunction { [unowned self] state in
                logFromLua(level, state)
                return 0
            }))
        }
        api.append(("log", .table(.record(log))))
        state.setGlobal("relais", .table(.record(api)))
        state.setGlobal("print", state.makeFunction { [unowned self] state in
            logFromLua(.info, state)
            return 0
        })
        state.setGlobal("require", state.makeFunction { [unowned self] state in
            guard let name = state.argument(1).stringValue else { throw LuaError("require expects a module name") }
            state.push(try require(name))
            return 1
        })
    }

    /// Builds a smarthost from its table, keeps its secret, pushes the target.
    private func pushSmarthost(_ table: LuaTable, _ state: LuaState) throws {
        let (smarthost, secret) = try Smarthost.parse(table)
        switch secret {
        case .tokenObject(let id)?:
            guard let object = state.object(id) as? OAuth2Object else {
                throw LuaError("relais.smarthost: auth.token must be a function or relais.oauth2{...}")
            }
            secrets[smarthost.name] = .oauth2(object.source)
        case let secret?:
            secrets[smarthost.name] = secret
        case nil:
            break
        }
        let target = RouteTarget.smarthost(smarthost)
        if loading && !declaredTargets.contains(target) { declaredTargets.append(target) }
        state.push(object: RouteTargetObject(target))
    }

    private func requireLoading(_ function: String) throws {
        guard loading else { throw LuaError("\(function) can only be called while the policy loads, not in a hook") }
    }

    private static func codeAndText(_ state: LuaState) -> (Int64?, String?) {
        if case .string = state.argument(1) { return (nil, state.argument(1).stringValue) }
        return (state.argument(1).integerValue, state.argument(2).stringValue)
    }

    private static func push(_ verdict: PolicyVerdict, _ state: LuaState) throws -> Int {
        state.push(object: VerdictObject(verdict))
        return 1
    }

    private func logFromLua(_ level: Logger.Level, _ state: LuaState) {
        if loading && quietWhileLoading { return }
        let parts = (0..<state.argumentCount).map { state.describe(at: $0 + 1) }
        logger.log(level: level, "\(parts.joined(separator: " "))", metadata: ["source": "policy"])
    }

    /// A file named relative to the policy's folder, read at load time only.
    private func readPolicyFile(_ argument: LuaValue, function: String) throws -> [UInt8] {
        try requireLoading(function)
        guard let name = argument.stringValue, !name.isEmpty else { throw LuaError("\(function) expects a file path") }
        let path = name.hasPrefix("/") ? name : FilePaths.normalized(source.directory + "/" + name)
        guard let data = FileManager.default.contents(atPath: path) else { throw LuaError("\(function): cannot read \(path)") }
        if !watchedFiles.contains(path) { watchedFiles.append(path) }
        return Array(data)
    }

    /// `require`: built-in modules, then modules beside the policy file
    /// (`a.b` is `a/b.lua`).
    private func require(_ name: String) throws -> LuaValue {
        if let module = modules[name] { return module }
        try requireLoading("require")
        guard !name.isEmpty, !name.hasPrefix("."), !name.contains(".."),
              name.unicodeScalars.allSatisfy({ $0.isASCIIModuleCharacter })
        else { throw LuaError("require: bad module name \(name.debugDescription)") }
        guard !modulesLoading.contains(name) else { throw LuaError("require: \(name) requires itself (a loop)") }
        let text: [UInt8]
        let chunkName: String
        if let builtIn = BuiltInModules.sources[name] {
            text = Array(builtIn.utf8)
            chunkName = "@(built-in)/" + name
        } else {
            let path = FilePaths.normalized(source.directory + "/" + name.replacingOccurrences(of: ".", with: "/") + ".lua")
            guard let data = FileManager.default.contents(atPath: path) else {
                throw LuaError("require: module \(name) not found (looked for \(path))")
            }
            if !watchedFiles.contains(path) { watchedFiles.append(path) }
            text = Array(data)
            chunkName = "@" + path
        }
        modulesLoading.insert(name)
        defer { modulesLoading.remove(name) }
        try state.load(text, chunkName: chunkName)
        state.push(.text(name))
        let result = try state.call(arguments: 1, results: 1).first ?? .nil
        let module = result.isNil ? LuaValue.boolean(true) : result
        modules[name] = module
        return module
    }

    /// Route targets from a Lua value: one target or a list (failover order).
    func routeTargets(_ value: LuaValue) throws -> [RouteTarget] {
        switch value {
        case .object(let id):
            guard let target = state.object(id) as? RouteTargetObject else {
                throw LuaError("expected a route such as relais.smarthost{...} or relais.maildir(...), got \(state.object(id)?.luaTypeName ?? "an object")")
            }
            return [target.target]
        case .table(let table) where table.isArray && !table.entries.isEmpty:
            return try table.array.flatMap { try routeTargets($0) }
        default:
            throw LuaError("expected a route such as relais.smarthost{...}, relais.maildir(...) or a list of them, got \(value.typeName)")
        }
    }
}

extension Unicode.Scalar {
    fileprivate var isASCIIModuleCharacter: Bool {
        ("a"..."z").contains(self) || ("A"..."Z").contains(self) || ("0"..."9").contains(self)
            || self == "_" || self == "-" || self == "."
    }
}

extension PolicyRuntime {
    /// The password, the token the policy's function returns now, or the
    /// OAuth2 source to ask (over HTTPS, off this loop).
    func credential(for smarthost: String) throws -> Credential {
        switch secrets[smarthost] {
        case .password(let password)?:
            return .ready(password)
        case .token(let function)?:
            guard let token = try state.call(function, []).first?.stringValue, !token.isEmpty else {
                throw LuaError("the XOAUTH2 token function of \(smarthost) returned no token")
            }
            return .ready(token)
        case .oauth2(let source)?:
            return .oauth2(source)
        case .tokenObject?, nil:
            throw LuaError("the policy has no credentials for smarthost \(smarthost) any more")
        }
    }
}
