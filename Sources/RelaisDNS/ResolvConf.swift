/// The `nameserver` lines of resolv.conf(5): where lookups go when the
/// policy names no servers.
public enum ResolvConf {
    public static let path = "/etc/resolv.conf"

    /// `HOST:PORT` strings, in file order; `127.0.0.1:53` when none.
    public static func servers(in text: String) -> [String] {
        let servers = text.split(whereSeparator: \.isNewline).compactMap { line -> String? in
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2, words[0] == "nameserver" else { return nil }
            let address = words[1].split(separator: "%").first.map(String.init) ?? String(words[1])
            return address.contains(":") ? "[\(address)]:53" : "\(address):53"
        }
        return servers.isEmpty ? ["127.0.0.1:53"] : servers
    }
}
