import ArgumentParser
import Foundation
import Logging
import NIOPosix
import Relais

/// `relais check CONFIG`: load a policy without serving and show what it does.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Load a policy without serving: print listeners, hooks per stage and upstreams.",
        discussion: "Exits non-zero, with file:line, when the policy does not load."
    )

    @Argument(help: "The policy (a Lua file).")
    var config: String

    func run() throws {
        let logger = CommandLogging.logger()
        do {
            let generation = try PolicyGeneration.load(.file(config), overrides: PolicySettings(), base: ServerConfiguration(),
                                                       loops: [MultiThreadedEventLoopGroup.singleton.next()], number: 1, services: HookServices(), logger: logger)
            print(PolicyReport(generation).text)
        } catch {
            CommandLogging.fail("\(error)")
        }
    }
}

/// Logging and failure output shared by the commands.
enum CommandLogging {
    /// Policy log lines (relais.log, print) go to standard error.
    static func logger(level: Logger.Level = .info) -> Logger {
        var logger = Logger(label: "relais") { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        logger.logLevel = level
        return logger
    }

    /// Prints `relais: message` to standard error and exits with status 1.
    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("relais: \(message)\n".utf8))
        Foundation.exit(1)
    }
}
