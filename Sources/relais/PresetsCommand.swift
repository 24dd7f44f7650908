import ArgumentParser
import Relais

/// `relais presets [NAME]`: the shipped provider presets.
struct PresetsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "presets",
        abstract: "List the provider presets, or show one: settings, options and sources."
    )

    @Argument(help: "A preset name, e.g. sendgrid.")
    var name: String?

    func run() throws {
        guard let name else {
            for preset in ProviderPresets.all { print("\(preset.name.padding(toLength: 14, withPad: " ", startingAt: 0)) \(preset.description)") }
            return
        }
        guard let text = ProviderPresets.show(name) else {
            CommandLogging.fail("unknown preset \(name.debugDescription); `relais presets` lists them")
        }
        print(text)
    }
}
