import Foundation
import Logging
import NIOCore
import RelaisDNS
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
    var hooks: [HookStage: [LuaReference]] = [:]
    /// Each `relais.config{...}` call, in order; later calls win.
    var settings: [PolicySettings] = []
    /// The config file and every file it required or read.
    var watchedFiles: [String] = []
    /// Route targets the policy made while loading, for `relais check`.
    var declaredTargets: [RouteTarget] = []
    /// Upstream credentials by smarthost name.
    var secrets: [String: SmarthostSecret] = [:]
    /// The DKIM signers smarthosts name, by label.
    var signers: [String: DKIMSigner] = [:]
    var loading = true
    let logger: Logger
    var modules: [String: LuaValue] = [:]
    var modulesLoading: Set<String> = []

    /// Whether `relais.log` and `print` are silent while the policy loads
    /// (a generation loads it once per event loop; one copy speaks).
    let quietWhileLoading: Bool
    /// The loop and services the hooks' DNS, HTTP and Redis calls use; nil
    /// for a state that only loads the policy (`check`, the first load).
    let io: HookIO?
    /// One Redis connection per server and login, for this loop.
    var redisClients: [RedisEndpoint: RedisClient] = [:]

    /// Loads and runs the policy. Errors carry `file:line`.
    init(source: PolicySource, limits: LuaLimits, logger: Logger, quietWhileLoading: Bool = false, io: HookIO? = nil) throws {
        self.source = source
        self.logger = logger
        self.quietWhileLoading = quietWhileLoading
        self.io = io
        self.state = try LuaState(limits: limits)
        state.releasedObjectAdvice = "this object was given to a hook call that has returned; "
            + "keep the values you need (msg.id, rcpt.address), not the object"
        installAPI()
        try state.run(Array(BuiltInModules.helpers.utf8), chunkName: "@(built-in)/relais.helpers")
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


    /// Installs the `relais` table, `print` and `require`, one area at a time.
    private func installAPI() {
        let api = configAPI() + verdictAPI() + targetAPI() + helperAPI() + servicesAPI() + dkimAPI()
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

    func requireLoading(_ function: String) throws {
        guard loading else { throw LuaError("\(function) can only be called while the policy loads, not in a hook") }
    }
}

/// Where a runtime's hooks do their I/O: its event loop (results resume
/// the hook there), the generation's resolver, the server's services.
struct HookIO {
    let loop: any EventLoop
    let resolver: DNSResolver
    let services: HookServices
}

extension PolicyRuntime {
    /// This loop's connection to `endpoint`, made on first use.
    func redisClient(for endpoint: RedisEndpoint, on loop: any EventLoop) -> RedisClient {
        if let client = redisClients[endpoint] { return client }
        let client = RedisClient(endpoint: endpoint, loop: loop)
        redisClients[endpoint] = client
        return client
    }

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
