import ArgumentParser
import Foundation

// Commands whose issues have not landed yet. Each says so and exits non-zero, so no script can
// mistake one for a success. Replace a stub with its real file when its issue lands.

private func notImplemented(_ name: String) throws -> Never {
    FileHandle.standardError.write(Data("switchover \(name): not implemented yet\n".utf8))
    throw Exit.inputError
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Preflight, then the cutover; resumes a journaled run.")
    @OptionGroup var global: GlobalOptions
    @Argument var from: String
    @Argument var to: String
    @Option var policy: String
    func run() async throws { try notImplemented("run") }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The run's phase, step, weights, gates and drain.")
    @OptionGroup var global: GlobalOptions
    func run() async throws { try notImplemented("status") }
}

struct Pause: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Hold the running cutover at its current step.")
    @OptionGroup var global: GlobalOptions
    func run() async throws { try notImplemented("pause") }
}

struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Continue a paused cutover.")
    @OptionGroup var global: GlobalOptions
    func run() async throws { try notImplemented("resume") }
}

struct Promote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Skip the remaining steps to 100%, gates still watched for one bake.")
    @OptionGroup var global: GlobalOptions
    func run() async throws { try notImplemented("promote") }
}

struct Abort: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop the cutover and leave the weights as they are.")
    @OptionGroup var global: GlobalOptions
    func run() async throws { try notImplemented("abort") }
}

struct Rollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send all traffic back to FROM now.")
    @OptionGroup var global: GlobalOptions
    func run() async throws { try notImplemented("rollback") }
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
