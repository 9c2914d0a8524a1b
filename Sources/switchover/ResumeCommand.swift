import ArgumentParser
import SwitchoverCore

struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Continue a paused cutover (its step's bake starts again).",
                                                    discussion: "Exit 0 accepted; 1 refused, no coordinator running, or no answer within 5 s (the command is then withdrawn, never carried out later).")
    @OptionGroup var global: GlobalOptions
    func run() async throws { try await submitToCoordinator(.resume, global: global) }
}
