import Foundation

/// Where a policy comes from: a config file on disk, or the default policy
/// built into the binary.
public enum PolicySource: Sendable, Equatable {
    case file(String)
    case embedded(name: String, text: String)

    /// The policy `relais run` uses without a config file: listen on
    /// loopback, relay for loopback clients only, deliver to the local
    /// maildir. Written in Lua like any other policy.
    public static let builtInDefault = PolicySource.embedded(name: "default.lua", text: """
        -- The default policy of `relais run` without a config file.
        relais.config {
          listen = { "127.0.0.1:2525" },
          relay_networks = { "127.0.0.0/8", "::1/128" },
          spool = "relais-data/spool",
        }
        -- No hooks: recipients are accepted for clients in relay_networks only,
        -- and every message goes to the local maildir (relais-data/mail).
        """)

    /// How the source is named in error messages (`file:line:`).
    var chunkName: String {
        switch self {
        case .file(let path): return "@" + path
        case .embedded(let name, _): return "@(built-in)/" + name
        }
    }

    /// The folder `require` and `relais.read_file` resolve relative names in.
    var directory: String {
        switch self {
        case .file(let path): return DurableFiles.parentFolder(of: FilePaths.absolute(path))
        case .embedded: return FileManager.default.currentDirectoryPath
        }
    }
}

/// Path helpers for files named in a policy.
enum FilePaths {
    /// `path` made absolute against the current directory.
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        let base = FileManager.default.currentDirectoryPath
        return normalized(base + "/" + path)
    }

    /// Removes `.` components and resolves `..` textually.
    static func normalized(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." || part.isEmpty { continue }
            if part == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }
}
