/// Syntax checks for textual IP addresses as they appear in address literals
/// (RFC 5321 4.1.3), without any resolver or socket involved.
public enum IPAddressText {
    // IPv4-address-literal = Snum 3("." Snum)
    public static func isIPv4(_ text: Substring) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in
            (1...3).contains(part.count) && part.allSatisfy(\.isASCIIDigit) && (Int(part) ?? 256) <= 255
        }
    }

    // IPv6-addr = IPv6-full / IPv6-comp / IPv6v4-full / IPv6v4-comp
    public static func isIPv6(_ text: Substring) -> Bool {
        var groups = text.split(separator: ":", omittingEmptySubsequences: false).map { $0 }
        let capacity = 8
        if let last = groups.last, last.contains(".") {
            // IPv6v4: the dotted quad stands for the last two groups.
            guard isIPv4(last) else { return false }
            groups.removeLast()
            groups.append(contentsOf: ["0", "0"])
        }
        let emptyGroups = groups.indices.filter { groups[$0].isEmpty }
        let edges = (groups.first?.isEmpty == true ? 1 : 0) + (groups.last?.isEmpty == true ? 1 : 0)
        // "::" shows as one empty group inside, or two at either end.
        let compressions = emptyGroups.isEmpty ? 0 : 1
        if groups.first?.isEmpty == true && groups.count > 1 && !groups[1].isEmpty { return false }
        if groups.last?.isEmpty == true && groups.count > 1 && !groups[groups.count - 2].isEmpty { return false }
        guard emptyGroups.count - edges <= 1, emptyGroups.count <= 2 || text == "::" else { return false }
        if compressions == 1 {
            let nonEmpty = groups.filter { !$0.isEmpty }
            guard nonEmpty.count < capacity else { return false }
            return nonEmpty.allSatisfy(isHexGroup)
        }
        return groups.count == capacity && groups.allSatisfy(isHexGroup)
    }

    private static func isHexGroup(_ group: Substring) -> Bool {
        (1...4).contains(group.count) && group.allSatisfy(\.isHexDigit)
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
