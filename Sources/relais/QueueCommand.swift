import ArgumentParser
import Foundation
import Relais

/// `relais queue list|show|flush|delete`: inspect and act on the spool.
struct QueueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Inspect and act on the queue.",
        discussion: "flush and delete act on the running relay: through its admin HTTP endpoint when --config names a policy with relais.config{ admin = ... }, else through its admin socket (<spool>/admin.sock); with no relay running, delete removes the files and flush has nothing to do.",
        subcommands: [List.self, Show.self, Flush.self, Delete.self]
    )

    struct SpoolOptions: ParsableArguments {
        @Option(help: "The spool folder (default relais-data/spool).")
        var spool: String?

        @Option(help: "Take the spool folder from this policy's relais.config.")
        var config: String?

        func folder() -> String {
            spool ?? configuration().spoolDirectory
        }

        /// The policy's configuration (the defaults without --config).
        func configuration() -> ServerConfiguration {
            guard let config else { return ServerConfiguration() }
            do {
                return try PolicyGeneration.load(.file(config), overrides: PolicySettings(), base: ServerConfiguration(),
                                                 loops: [], number: 1, services: HookServices(), logger: CommandLogging.logger(level: .error)).configuration
            } catch {
                CommandLogging.fail("\(error)")
            }
        }

        /// The running relay's admin endpoint, when the policy has one.
        func admin() -> AdminClient? {
            config == nil ? nil : AdminClient(configuration())
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List queued messages and their recipients.")
        @OptionGroup var options: SpoolOptions
        @Option(help: "Skip this many messages (oldest first).")
        var offset = 0
        @Option(help: "Show at most this many messages (a page of a long queue; default all).")
        var limit: Int?

        func run() throws {
            do {
                print(try QueueInspector(spool: options.folder()).list(offset: max(0, offset), limit: limit.map { max(0, $0) }))
            } catch {
                CommandLogging.fail("\(error)")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one message: envelope, routes, state, headers.")
        @OptionGroup var options: SpoolOptions
        @Argument(help: "The queue id.") var id: String

        func run() throws {
            do { print(try QueueInspector(spool: options.folder()).show(id)) } catch { CommandLogging.fail("\(error)") }
        }
    }

    struct Flush: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Try every queued message now.")
        @OptionGroup var options: SpoolOptions

        func run() async throws {
            if let admin = options.admin(), let (status, body) = await admin.call("POST", "/api/queue/flush") {
                guard status == 200, let flushed = Self.number(body, "flushed") else { CommandLogging.fail("\(admin.url): HTTP \(status) \(body)") }
                return print("ok \(flushed) message(s) due now (via \(admin.url))")
            }
            guard let reply = AdminChannel.send("flush", spool: options.folder()) else {
                print("no relay is running; queued messages are tried when it starts")
                return
            }
            print(reply)
            if reply.hasPrefix("error") { throw ExitCode(1) }
        }

        static func number(_ json: String, _ key: String) -> Int? {
            ((try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any])?[key] as? Int
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a message from the queue, without a bounce.")
        @OptionGroup var options: SpoolOptions
        @Argument(help: "The queue id.") var id: String

        func run() async throws {
            if let admin = options.admin(), let (status, body) = await admin.call("DELETE", "/api/queue/\(id)") {
                guard status == 200 else { CommandLogging.fail("\(id): \(body.trimmingCharacters(in: .whitespacesAndNewlines))") }
                return print("ok deleted \(id) (via \(admin.url))")
            }
            let spool = options.folder()
            if let reply = AdminChannel.send("delete \(id)", spool: spool) {
                print(reply)
                if reply.hasPrefix("error") { throw ExitCode(1) }
                return
            }
            guard (try? QueueInspector(spool: spool).ids().contains(id)) == true else {
                CommandLogging.fail("\(id) is not queued in \(spool)")
            }
            unlink(spool + "/queue/" + id)
            unlink(spool + "/state/" + id)
            print("ok deleted \(id) (no relay running)")
        }
    }
}
