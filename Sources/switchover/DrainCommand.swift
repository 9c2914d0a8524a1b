import ArgumentParser
import Foundation
import SwitchoverRuntime

/// `switchover drain FROM`: the drain tracking of `run --until drained`, alone, for a cutover
/// made elsewhere (or a run stopped while draining). It is a coordinator like `run`: it takes
/// the lock, journals everything, and answers `status`, `decommission` and `rollback` meanwhile.
struct Drain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Track FROM's drain until the policy says drained.",
        discussion: """
            Goes on with the latest run's drain when it moved traffic from FROM and is promoted \
            or draining; otherwise journals a drain-only run, which requires FROM's live weight \
            to read 0 from the load balancer. Puts FROM's servers in drain (HAProxy: no new \
            sessions, open ones and health checks kept; Envoy has no drain state, weight 0 \
            already sends no new requests) and samples FROM's open sessions, sessions and \
            responses every `sampling` until drained.
            Exit codes: 0 drained (or decommissioned meanwhile); 1 timed out (with what is still \
            open), FROM's live weight not 0, rolled back meanwhile, or the coordinator failed \
            (see `switchover status`); 2 bad input or another \
            coordinator running; 130 stopped by SIGINT/SIGTERM (`switchover drain` goes on).
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The cluster being drained (traffic already moved away from it).") var from: String
    @Option(help: "The policy whose `drain` section decides (default: the latest run's, or the only one).")
    var policy: String?
    @Option(help: "The cluster traffic moved to (default: the latest run's, or the only other cluster).")
    var to: String?
    @Flag(help: "Go on under the policy as it is now when it was edited since the run began.")
    var adoptPolicy = false
    @OptionGroup var metrics: MetricsOptionGroup

    func run() async throws {
        try await global.guardingJournal("drain") {
            let context = try global.context()
            var request = RunLauncher.DrainRequest(from: from, to: to, policy: policy, adoptPolicy: adoptPolicy)
            request.metrics = metrics.options
            let report = try await global.refusingBadConfiguration {
                try await RunLauncher.drain(request, context: context, reporter: makeReporter(logger: context.logger))
            }
            try printRunReport(report, command: "drain", global: global)
        }
    }
}
