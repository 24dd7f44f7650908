import RelaisLua

/// `relais.maildir`, `relais.smarthost`, `relais.preset`, `relais.oauth2`
/// and `relais.ses_smtp_password`: where mail can go, and the credentials
/// to get it there.
extension PolicyRuntime {
    func targetAPI() -> [(String, LuaValue)] {
        [
            ("maildir", state.makeFunction { [unowned self] state in
                guard let path = state.argument(1).stringValue, !path.isEmpty else {
                    throw LuaError("relais.maildir expects a folder path")
                }
                push(.maildir(path: FilePaths.absolute(path)), state)
                return 1
            }),
            ("smarthost", state.makeFunction { [unowned self] state in
                guard let table = state.argument(1).tableValue else { throw LuaError("relais.smarthost expects a table") }
                try pushSmarthost(table, state)
                return 1
            }),
            ("mx", state.makeFunction { [unowned self] state in
                let table = state.argument(1).isNil ? LuaTable() : state.argument(1).tableValue
                guard let table else { throw LuaError("relais.mx expects a table (or nothing)") }
                var target = try MXTargetReader.read(LuaTableReader(table, function: "relais.mx"))
                target.dkim = try signerLabels(table["dkim"], function: "relais.mx")
                push(.mx(target), state)
                return 1
            }),
            ("preset", state.makeFunction { [unowned self] state in
                try pushSmarthost(try buildPreset(state.argument(1), options: state.argument(2)), state)
                return 1
            }),
            ("oauth2", state.makeFunction { state in
                guard let table = state.argument(1).tableValue else { throw LuaError("relais.oauth2 expects a table") }
                state.push(object: OAuth2Object(try OAuth2TokenSource.read(table)))
                return 1
            }),
            ("ses_smtp_password", state.makeFunction { state in
                guard let secret = state.argument(1).stringValue, let region = state.argument(2).stringValue else {
                    throw LuaError("relais.ses_smtp_password expects the secret access key and the region")
                }
                state.push(SESCredentials.smtpPassword(secretAccessKey: secret, region: region))
                return 1
            }),
        ]
    }

    /// Runs `presets.<name>`'s build function on the options.
    private func buildPreset(_ nameValue: LuaValue, options: LuaValue) throws -> LuaTable {
        guard let name = nameValue.stringValue, PresetSources.presets[name] != nil else {
            let known = PresetSources.presets.keys.sorted().joined(separator: ", ")
            throw LuaError("relais.preset: unknown preset \(nameValue.stringValue.map { $0.debugDescription } ?? nameValue.typeName) (presets: \(known))")
        }
        guard case .function(let build) = try require("presets." + name).tableValue?["build"] ?? .nil else {
            throw LuaError("relais.preset: presets.\(name) has no build function")
        }
        guard let table = try state.call(build, [options.isNil ? .table(LuaTable()) : options]).first?.tableValue else {
            throw LuaError("relais.preset: presets.\(name) built nothing")
        }
        return table
    }

    /// Builds a smarthost from its table, keeps its secret, pushes the target.
    private func pushSmarthost(_ table: LuaTable, _ state: LuaState) throws {
        var (smarthost, secret) = try SmarthostReader.read(table)
        smarthost.dkim = try signerLabels(table["dkim"], function: "relais.smarthost")
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
        push(.smarthost(smarthost), state)
    }

    /// Pushes `target` as a Lua value, noting it for `relais check` while loading.
    private func push(_ target: RouteTarget, _ state: LuaState) {
        if loading && !declaredTargets.contains(target) { declaredTargets.append(target) }
        state.push(object: RouteTargetObject(target))
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
