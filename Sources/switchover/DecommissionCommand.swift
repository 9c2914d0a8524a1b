import ArgumentParser
import Foundation
import SwitchoverRuntime

/// `switchover decommission FROM`: records, in the journal, that FROM may be torn down. The
/// engine decides (the same rule with or without a coordinator): accepted when the run is
/// `drained`; refused otherwise, with the evidence; `--force --reason` overrides and journals
/// both the reason and the evidence at that moment. With a coordinator running it goes through
/// the journal like `pause`; with none, this process takes the lock, takes a fresh sample of the
/// load balancer (the evidence is FROM now, not when the last coordinator stopped), and carries
/// it out itself, as `rollback` does. After it the run is final: `rollback` refuses, and nothing
/// in Switchover sends traffic to FROM again without a new run.
struct Decommission: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record that FROM may be torn down; refuses unless drained.",
        discussion: """
            Refuses (exit 1) unless the latest run of FROM is drained, printing the evidence: \
            open sessions, last request seen, live weight. --force --reason TEXT records the \
            decommission anyway, with the reason and that evidence. Exit 0 recorded, 1 refused.
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The cluster that may be torn down.") var from: String
    @Flag(help: "Decommission even though FROM is not drained (needs --reason).") var force = false
    @Option(help: "Why, for the journal (required with --force).") var reason: String?

    func validate() throws {
        if force && (reason?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "").isEmpty {
            throw ValidationError("--force needs --reason TEXT: the journal keeps why FROM was torn down before it drained")
        }
    }

    func run() async throws {
        try await global.guardingJournal("decommission") {
            let context = try global.context()
            let answer = try await global.refusingBadConfiguration {
                try await Control.decommission(from: from, force: force, reason: reason, context: context)
            }
            try printControlAnswer(answer, global: global)
        }
    }
}
