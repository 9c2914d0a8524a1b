import ArgumentParser
import SwitchoverCore

struct Promote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Skip the remaining steps to 100%, gates still watched for one bake.",
                                                    discussion: "Exit 0 accepted; 1 refused, no coordinator running, or no answer within 5 s (the command is then withdrawn, never carried out later).")
    @OptionGroup var global: GlobalOptions
    func run() async throws { try await submitToCoordinator(.promote, global: global) }
}
