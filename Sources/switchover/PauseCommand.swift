import ArgumentParser
import SwitchoverCore

struct Pause: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Hold the running cutover at its current step.",
                                                    discussion: "Exit 0 accepted; 1 refused, no coordinator running, or no answer within 5 s (the command is then withdrawn, never carried out later).")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: ReasonOption
    func run() async throws { try await submitToCoordinator(.pause(reason: options.reason), global: global) }
}
