import Foundation
import Logging
import RelaisLua

/// `relais.env`, `relais.in_networks`, `relais.read_file`/`read_lines`,
/// `relais.log`, and the `require` and `print` behind the globals.
extension PolicyRuntime {
    func helperAPI() -> [(String, LuaValue)] {
        var log: [(String, LuaValue)] = []
        for (name, level) in [("info", Logger.Level.info), ("warn", .warning), ("error", .error)] {
            log.append((name, state.makeFunction { [unowned self] state in
                logFromLua(level, state)
                return 0
            }))
        }
        return [
            ("env", state.makeFunction { state in
                guard let name = state.argument(1).stringValue else { throw LuaError("relais.env expects a variable name") }
                state.push(ProcessInfo.processInfo.environment[name].map(LuaValue.text) ?? state.argument(2))
                return 1
            }),
            ("in_networks", state.makeFunction { state in
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
            }),
            ("read_file", state.makeFunction { [unowned self] state in
                state.push(bytes: try readPolicyFile(state.argument(1), function: "relais.read_file"))
                return 1
            }),
            ("read_lines", state.makeFunction { [unowned self] state in
                let bytes = try readPolicyFile(state.argument(1), function: "relais.read_lines")
                let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line -> LuaValue in
                    .string(LuaString(bytes: Array(line.last == UInt8(ascii: "\r") ? line.dropLast() : line)))
                }
                let trimmed = lines.last == .text("") ? Array(lines.dropLast()) : lines
                state.push(.table(.array(trimmed)))
                return 1
            }),
            ("log", .table(.record(log))),
        ]
    }

    func logFromLua(_ level: Logger.Level, _ state: LuaState) {
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
    func require(_ name: String) throws -> LuaValue {
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

}

extension Unicode.Scalar {
    fileprivate var isASCIIModuleCharacter: Bool {
        ("a"..."z").contains(self) || ("A"..."Z").contains(self) || ("0"..."9").contains(self)
            || self == "_" || self == "-" || self == "."
    }
}

