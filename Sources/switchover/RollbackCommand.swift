import ArgumentParser
import SwitchoverRuntime

/// `rollback` is the one control command that also works with no coordinator running: it is
/// the emergency exit, and a crashed coordinator must not lock people out of it. Then this
/// process takes the coordinator lock (so no coordinator starts meanwhile), journals the
/// command, and carries it out through the driver exactly as the coordinator would: intent,
/// apply, read-back, result, the new state. With a coordinator running it asks that one.
struct Rollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send all traffic back to FROM now.",
        discussion: """
            With a coordinator running, asks it and waits for its acknowledgement. With none \
            running, performs the rollback itself through the load balancer, journaled (needs \
            --clusters and --policies of the run). Exit 0 accepted (and verified), 1 refused.
            """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: ReasonOption

    func run() async throws {
        try await global.guardingJournal("rollback") {
            let context = try global.context()
            let answer = try await global.refusingBadConfiguration {
                try await Control.rollback(reason: options.reason, context: context)
            }
            try printControlAnswer(answer, global: global)
        }
    }
}
