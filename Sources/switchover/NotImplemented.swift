import ArgumentParser
import Foundation

// Commands whose issues have not landed yet. Each says so and exits non-zero, so no script can
// mistake one for a success. Replace a stub with its real file when its issue lands.

private func notImplemented(_ name: String) throws -> Never {
    FileHandle.standardError.write(Data("switchover \(name): not implemented yet\n".utf8))
    throw Exit.inputError
}

struct Drain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Track FROM's drain until the policy says drained.")
    @OptionGroup var global: GlobalOptions
    @Argument var from: String
    func run() async throws { try notImplemented("drain") }
}

struct Decommission: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Record that FROM may be torn down; refuses unless drained.")
    @OptionGroup var global: GlobalOptions
    @Argument var from: String
    func run() async throws { try notImplemented("decommission") }
}
