import ArgumentParser
import Foundation
import Relais

/// `relais simulate`: run a message through a policy without network or spool.
struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run a message through a policy's hooks and routing, without network or spool.",
        discussion: "Prints each stage's verdict, the rewritten envelope and headers, and the route of each recipient. Exits 1 when the message would be refused (or delivered to nobody)."
    )

    @Argument(help: "The policy (a Lua file).")
    var config: String

    @Option(help: "Envelope sender (empty for the null sender).")
    var from: String

    @Option(help: "Envelope recipient (repeatable).")
    var to: [String]

    @Option(help: "Client IP address.")
    var ip: String = "127.0.0.1"

    @Option(help: "HELO/EHLO name the client gives.")
    var helo: String = "client.example"

    @Option(help: "Simulate a client authenticated as this user.")
    var auth: String?

    @Argument(help: "The message file, or - for standard input (default: a small test message).")
    var message: String?

    func validate() throws {
        guard !to.isEmpty else { throw ValidationError("give at least one --to") }
    }

    func run() throws {
        let bytes: [UInt8]
        switch message {
        case "-"?:
            bytes = Array(FileHandle.standardInput.readDataToEndOfFile())
        case let path?:
            guard let data = FileManager.default.contents(atPath: path) else { CommandLogging.fail("cannot read \(path)") }
            bytes = Array(data)
        case nil:
            bytes = Array("From: <\(from)>\r\nTo: \(to.map { "<\($0)>" }.joined(separator: ", "))\r\nSubject: relais simulate\r\n\r\nTest message.\r\n".utf8)
        }
        var input = PolicySimulation.Input(sender: from, recipients: to, message: bytes)
        input.clientIP = ip
        input.helo = helo
        input.authUser = auth
        let report: PolicySimulation.Report
        do {
            report = try PolicySimulation.run(.file(config), overrides: PolicySettings(), input: input,
                                              logger: CommandLogging.logger())
        } catch {
            CommandLogging.fail("\(error)")
        }
        print(report.lines.joined(separator: "\n"))
        if report.refused { throw ExitCode(1) }
    }
}
