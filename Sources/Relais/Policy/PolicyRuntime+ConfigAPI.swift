import RelaisLua

/// `relais.config` and `relais.on`: what a policy sets while it loads.
extension PolicyRuntime {
    func configAPI() -> [(String, LuaValue)] {
        [
            ("config", state.makeFunction { [unowned self] state in
                try requireLoading("relais.config")
                guard let table = state.argument(1).tableValue else { throw LuaError("relais.config expects a table") }
                settings.append(try ConfigReader.read(table, targets: routeTargets))
                return 0
            }),
            ("on", state.makeFunction { [unowned self] state in
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
            }),
        ]
    }
}
