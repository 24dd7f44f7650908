/// Turns one command line (CRLF already removed by `CommandLineFramer`) into
/// an `SMTPCommand`. Verbs are case-insensitive; arguments are checked against
/// the RFC 5321 grammar quoted beside each case.
public struct SMTPCommandParser: Sendable {
    public var pathParser: PathParser

    public init(limits: SMTPLimits = SMTPLimits()) {
        self.pathParser = PathParser(limits: limits, allowUTF8: true)
    }

    public func parse(_ line: String) throws(SMTPCommandError) -> SMTPCommand {
        let verbEnd = line.firstIndex(of: " ") ?? line.endIndex
        let verb = line[..<verbEnd].uppercased()
        let argument = line[verbEnd...].drop(while: { $0 == " " })
        switch verb {
        // helo = "HELO" SP Domain CRLF ; ehlo = "EHLO" SP ( Domain / address-literal ) CRLF
        case "HELO", "EHLO":
            let name = argument.trimmingTrailingSpaces
            guard !name.isEmpty, !name.contains(" ") else {
                throw .arguments(verb: verb, usage: "\(verb) hostname")
            }
            return verb == "HELO" ? .helo(String(name)) : .ehlo(String(name))
        // mail = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF
        case "MAIL":
            let (path, parameters) = try pathAndParameters(argument, prefix: "FROM:", verb: verb)
            let sender: ReversePath
            do { sender = try pathParser.reversePath(path) } catch { throw .sender(error) }
            return .mail(sender, try parse(parameters))
        // rcpt = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path )
        //        [SP Rcpt-parameters] CRLF
        case "RCPT":
            let (path, parameters) = try pathAndParameters(argument, prefix: "TO:", verb: verb)
            let mailbox: MailboxAddress
            do { mailbox = try pathParser.forwardPath(path) } catch { throw .recipient(error) }
            return .rcpt(mailbox, try parse(parameters))
        case "DATA": return try noArgument(.data, argument, verb)
        // bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CRLF   (RFC 3030)
        case "BDAT":
            let words = argument.split(separator: " ")
            guard (1...2).contains(words.count), words[0].allSatisfy(\.isASCIIDigit), words[0].count <= 18,
                  let size = Int(words[0]), words.count == 1 || words[1].uppercased() == "LAST"
            else { throw .arguments(verb: verb, usage: "BDAT size [LAST]") }
            return .bdat(size: size, last: words.count == 2)
        case "RSET": return try noArgument(.rset, argument, verb)
        // noop = "NOOP" [ SP String ] CRLF
        case "NOOP": return .noop
        case "QUIT": return try noArgument(.quit, argument, verb)
        case "VRFY", "EXPN":
            guard !argument.isEmpty else { throw .arguments(verb: verb, usage: "\(verb) address") }
            return verb == "VRFY" ? .vrfy(String(argument)) : .expn(String(argument))
        case "HELP": return .help(argument.isEmpty ? nil : String(argument))
        case "STARTTLS": return try noArgument(.startTLS, argument, verb)
        // auth-command = "AUTH" SP sasl-mech [SP initial-response]   (RFC 4954)
        case "AUTH":
            let words = argument.split(separator: " ")
            guard (1...2).contains(words.count) else {
                throw .arguments(verb: verb, usage: "AUTH mechanism [initial-response]")
            }
            return .auth(mechanism: words[0].uppercased(), initialResponse: words.count == 2 ? String(words[1]) : nil)
        default:
            throw .unrecognized
        }
    }

    private func noArgument(_ command: SMTPCommand, _ argument: Substring, _ verb: String) throws(SMTPCommandError) -> SMTPCommand {
        guard argument.trimmingTrailingSpaces.isEmpty else { throw .arguments(verb: verb, usage: verb) }
        return command
    }

    /// Splits `FROM:<path> params`; a space after the colon is tolerated, as
    /// many deployed clients send one.
    private func pathAndParameters(_ argument: Substring, prefix: String, verb: String) throws(SMTPCommandError) -> (Substring, Substring) {
        let usage = "\(verb) \(prefix)<address>"
        let bytes = argument.utf8
        guard bytes.prefix(prefix.utf8.count).equalsIgnoringASCIICase(prefix) else { throw .arguments(verb: verb, usage: usage) }
        let rest = bytes.dropFirst(prefix.utf8.count).drop(while: { $0 == UInt8(ascii: " ") })
        guard rest.first == UInt8(ascii: "<") else { throw .arguments(verb: verb, usage: usage) }
        guard let close = closingBracket(rest) else { throw .arguments(verb: verb, usage: usage) }
        let after = rest[rest.index(after: close)...]
        guard after.isEmpty || after.first == UInt8(ascii: " ") else { throw .arguments(verb: verb, usage: usage) }
        return (Substring(rest[...close]), Substring(after.drop(while: { $0 == UInt8(ascii: " ") })))
    }

    /// The `>` that closes the path, skipping any inside a quoted local part.
    private func closingBracket(_ text: Substring.UTF8View) -> String.Index? {
        var inQuotes = false
        var escaped = false
        return text.firstIndex { byte in
            if escaped {
                escaped = false
            } else if byte == UInt8(ascii: "\\") && inQuotes {
                escaped = true
            } else if byte == UInt8(ascii: "\"") {
                inQuotes.toggle()
            } else if byte == UInt8(ascii: ">") && !inQuotes {
                return true
            }
            return false
        }
    }

    private func parse(_ parameters: Substring) throws(SMTPCommandError) -> ESMTPParameters {
        do { return try ESMTPParameters.parse(parameters.trimmingTrailingSpaces) } catch { throw .parameters(error) }
    }
}

extension Substring {
    var trimmingTrailingSpaces: Substring {
        var result = self
        while result.last == " " { result.removeLast() }
        return result
    }
}
