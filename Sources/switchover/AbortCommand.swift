import ArgumentParser
import SwitchoverCore

struct Abort: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop the cutover and leave the weights as they are.",
                                                    discussion: "Exit 0 accepted; 1 refused, no coordinator running, or no answer within 5 s (the command is then withdrawn, never carried out later).")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: ReasonOption
    func run() async throws { try await submitToCoordinator(.abort(reason: options.reason), global: global) }
}
