import Foundation
import RelaisLua

/// What `relais presets` shows: each preset's one-line description, and
/// for one preset its settings, options, documentation address, the date
/// its facts were checked and its Lua source.
public enum ProviderPresets {
    public struct Summary: Sendable {
        public var name: String
        public var description: String
    }

    public static var all: [Summary] {
        PresetSources.presets.keys.sorted().map { name in
            Summary(name: name, description: field("description", of: name) ?? "")
        }
    }

    public static func show(_ name: String) -> String? {
        guard let source = PresetSources.presets[name] else { return nil }
        var lines = ["preset    \(name)", "provider  \(field("description", of: name) ?? "")",
                     "docs      \(field("docs", of: name) ?? "")", "checked   \(field("checked", of: name) ?? "")",
                     "use       local upstream = relais.preset(\"\(name)\", { ... })",
                     "options   username, password (or token with mechanism = \"XOAUTH2\"), and any relais.smarthost field",
                     "          (host, port, tls, ca_file, verify_cert, max_connections, rate, ...) to override",
                     "source"]
        let text = source.hasSuffix("\n") ? source.dropLast() : Substring(source)
        lines += text.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }
        return lines.joined(separator: "\n")
    }

    /// A string field of the preset's table, read by loading it in a
    /// throwaway Lua state.
    private static func field(_ key: String, of name: String) -> String? {
        guard let state = try? LuaState(), let source = PresetSources.presets[name] else { return nil }
        state.setGlobal("require", state.makeFunction { state in
            state.push(try state.run(Array(PresetSources.common.utf8), chunkName: "@(built-in)/presets.common"))
            return 1
        })
        guard let table = (try? state.run(Array(source.utf8), chunkName: "@(built-in)/presets.\(name)"))?.tableValue else {
            return nil
        }
        return table[key].stringValue
    }
}
