import ArgumentParser
import Foundation
import SwitchoverCore
import SwitchoverRuntime

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Preflight, then the cutover (and FROM's drain); resumes a journaled run.",
        discussion: """
            --until drained (the default when the policy has a `drain` section): after promoted, \
            FROM's servers are put in drain and the run goes on until the policy says FROM is \
            drained (exit 0) or the drain times out (exit 1, saying what is still open). \
            --until promoted (the default without a `drain` section) stops at promoted; track the \
            drain later with `switchover drain FROM`.
            Exit codes: 0 promoted (or drained, or decommissioned meanwhile); 1 rolled back, \
            aborted, drain timed out, or the coordinator failed mid-run (weights may have moved: \
            see `switchover status`); 2 bad input, a failed preflight, or another coordinator \
            already running on this journal (nothing was changed); 130 stopped by SIGINT or \
            SIGTERM (weights left as they are; run again to resume). With --state etcd://..., a \
            coordinator that loses its lease stops at once and exits 1 (leaseLost); with --standby \
            it stands by again instead.
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The cluster traffic moves from.") var from: String
    @Argument(help: "The cluster traffic moves to.") var to: String
    @Option(help: "The policy's metadata.name.") var policy: String
    @Flag(help: ArgumentHelp("Resume under the policy as it is now when it was edited since the run began.",
                             discussion: "The run never steps back: it goes on at the first new step at or above the share it last asked for."))
    var adoptPolicy = false
    @Option(help: ArgumentHelp("Where the run stops: promoted or drained.",
                               discussion: "Default: drained when the policy has a `drain` section, else promoted."))
    var until: String?
    @OptionGroup var metrics: MetricsOptionGroup
    @Flag(help: ArgumentHelp("Wait while another coordinator leads this journal; take over when its lease ends.",
                             discussion: "For a second machine with --state etcd://...: the run resumes exactly where the leader left it (bake restarted). Losing the lease later makes it stand by again instead of exiting."))
    var standby = false

    func validate() throws {
        if let until, RunGoal(rawValue: until) == nil {
            throw ValidationError("--until \(until) is not a goal; known: \(RunGoal.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() async throws {
        try await global.guardingJournal("run") {
            let context = try global.context()
            let crash = ProcessInfo.processInfo.environment["SWITCHOVER_TEST_CRASH_AFTER_INTENT"].flatMap { Int($0) }
            var request = RunLauncher.RunRequest(from: from, to: to, policy: policy, goal: until.flatMap(RunGoal.init(rawValue:)),
                                                 adoptPolicy: adoptPolicy, crashAfterIntent: crash)
            request.metrics = metrics.options
            request.standby = standby
            let report = try await global.refusingBadConfiguration {
                try await RunLauncher.run(request, context: context, reporter: makeReporter(logger: context.logger))
            }
            try printRunReport(report, command: "run", global: global)
        }
    }
}
