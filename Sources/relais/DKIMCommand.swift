import ArgumentParser
import Foundation
import Relais
import RelaisTLS

/// `relais dkim keygen`: a new signing key, and the DNS record to publish.
struct DKIMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dkim",
        abstract: "DKIM keys.",
        subcommands: [Keygen.self]
    )

    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a new private key (PEM, mode 0600) and print the TXT record for <selector>._domainkey.<domain>.")
        @Option(help: "The signing domain (d=).") var domain: String
        @Option(help: "The selector (s=).") var selector: String
        @Option(help: "rsa (2048 bits) or ed25519.") var algorithm = "rsa"
        @Option(help: "RSA key size.") var bits = 2048
        @Option(help: "Where to write the key (default <selector>.<domain>.pem); an existing file is kept.")
        var out: String?

        func run() throws {
            let kind: SigningKey.Kind
            switch algorithm {
            case "rsa", "rsa-sha256":
                guard (1024...8192).contains(bits) else { CommandLogging.fail("--bits must be between 1024 and 8192") }
                kind = .rsa(bits: bits)
            case "ed25519", "ed25519-sha256":
                kind = .ed25519
            default:
                CommandLogging.fail("--algorithm must be rsa or ed25519")
            }
            let path = out ?? "\(selector).\(domain).pem"
            guard !FileManager.default.fileExists(atPath: path) else { CommandLogging.fail("\(path) exists; not overwritten") }
            let key = try SigningKey.generate(kind)
            guard FileManager.default.createFile(atPath: path, contents: Data(key.privatePEM.utf8),
                                                 attributes: [.posixPermissions: 0o600]) else {
                CommandLogging.fail("cannot write \(path)")
            }
            let type = kind == .ed25519 ? "ed25519" : "rsa"
            print("wrote \(path)")
            print("\(selector)._domainkey.\(domain). IN TXT \"v=DKIM1; k=\(type); p=\(key.publicKeyBase64)\"")
        }
    }
}
