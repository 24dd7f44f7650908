import ArgumentParser
import Relais

/// `relais cluster status`: the live nodes and the shared limits' usage,
/// from a running node's admin endpoint.
struct ClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Show the cluster a running relay shares its limits with.",
        subcommands: [Status.self]
    )

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Live nodes and shared usage (rate, connections, quota), through the admin endpoint.")
        @OptionGroup var options: QueueCommand.SpoolOptions
        @Flag(help: "Print the JSON of GET /api/cluster.") var json = false

        func run() async throws {
            guard let admin = options.admin() else {
                CommandLogging.fail("relais cluster status needs --config naming a policy with relais.config{ admin = ... }")
            }
            guard let (status, body) = await admin.call("GET", "/api/cluster") else {
                CommandLogging.fail("no relay answers at \(admin.url)")
            }
            guard status == 200 else { CommandLogging.fail("\(admin.url): HTTP \(status) \(body)") }
            guard !json, let text = ClusterStatus.text(json: body) else { return print(body) }
            print(text)
        }
    }
}
