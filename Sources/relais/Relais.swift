import ArgumentParser

/// The `relais` command line: a thin layer of argument parsing over the
/// `Relais` library.
@main
struct RelaisCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relais",
        abstract: "An SMTP relay whose policy is a Lua program.",
        subcommands: [RunCommand.self, CheckCommand.self, SimulateCommand.self, QueueCommand.self, ClusterCommand.self, DKIMCommand.self,
                      PresetsCommand.self],
        defaultSubcommand: RunCommand.self
    )
}
