import ArgumentParser
import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverRuntime
import SwitchoverStore
#if canImport(Glibc)
import Glibc
#endif

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

    func run() async throws {
        try await global.guardingJournal("drain") { try await execute() }
    }

    func execute() async throws {
        let logger = bootstrapLogging()
        let lock: CoordinatorLock
        do {
            lock = try CoordinatorLock(statePath: global.state)
        } catch let error as StoreError where error.code == .lockHeld {
            printError("switchover drain: refused: \(error.context)\n")
            throw Exit.inputError
        }
        defer { lock.release() }
        let journal = try SQLiteJournal(path: global.state)
        let latest = try global.latestRun(in: journal)
        let plan: DrainPlan
        do {
            plan = try RunSetup.planDrain(journal: journal, from: from)
        } catch {
            printError("switchover drain: \(error)\n")
            throw Exit.inputError
        }

        let (configuration, _) = global.loadConfiguration()
        var toName = to
        var policyName = policy
        if case .resume(let run, _) = plan {
            if let to, to != run.to { throw ValidationError("run \(run.id) moved \(from) to \(run.to), not \(to)") }
            if let policy, policy != run.policy { throw ValidationError("run \(run.id) runs under policy \(run.policy), not \(policy)") }
            toName = run.to
            policyName = run.policy
        } else {
            let sameFrom = latest.flatMap { $0.0.from == from ? $0.0 : nil }
            toName = toName ?? sameFrom?.to
                ?? { let others = configuration.clusters.map(\.name).filter { $0 != from }; return others.count == 1 ? others[0] : nil }()
            policyName = policyName ?? sameFrom?.policy
                ?? (configuration.policies.count == 1 ? configuration.policies[0].name : nil)
        }
        guard let toName else { throw ValidationError("which cluster did traffic move to? Say --to") }
        guard let policyName else { throw ValidationError("which policy's drain section? Say --policy") }
        let (_, fromCluster, toCluster, chosen) = try global.requirePair(from: from, to: toName, policy: policyName)
        let router: any WeightRouter, observer: any TrafficObserver
        do {
            (router, observer) = try DriverRegistry.standard.make(policy: chosen, from: fromCluster, to: toCluster, logger: logger)
        } catch {
            printError("switchover drain: \(error)\n")
            throw Exit.inputError
        }

        let runID: Int64
        let state: CutoverState
        let preflight: PreflightResult?
        var resumeCheck: (@Sendable () async -> PreflightOutcome)?
        switch plan {
        case .refuse(let why):
            printError("switchover drain: refused: \(why)\n")
            throw Exit.inputError
        case .resume(let run, let journaled):
            runID = run.id
            switch try PolicyRecord.resume(journaled, run: run, under: chosen, adopt: adoptPolicy, journal: journal, at: now()) {
            case .same(let resumed):
                state = resumed
            case .adopted(let resumed, let changes):
                printError("switchover drain: adopting the edited policy \(chosen.name): \(changes.joined(separator: "; "))\n")
                state = resumed
            case .refused(let why):
                switch global.output {
                case .text: printError("switchover drain: refused: \(why); nothing was changed\n")
                case .json: printJSON(["outcome": "refused", "detail": why, "run": run.id])
                }
                throw Exit.inputError
            }
            preflight = nil
            // Before FROM is drained again: its live weights must be the journal's (or a
            // restarted load balancer's, which the coordinator writes back first). Weights
            // someone changed on the same instance refuse: FROM may be carrying traffic.
            resumeCheck = { [router] in
                let expected = RunSetup.expectedPercentages(resuming: journaled)
                let failures: [String]
                do {
                    let live = try await router.currentWeights()
                    failures = PreflightChecks.weightFailures(live, router: router, expected: expected,
                                                              journaledInstance: journaled.loadBalancer)
                } catch {
                    failures = ["load balancer unreachable: \(error)"]
                }
                return PreflightOutcome(result: PreflightResult(failures: failures), trustReportJSON: nil)
            }
        case .fresh:
            let live: LiveWeights
            do {
                live = try await router.currentWeights()
            } catch {
                printError("switchover drain: cannot read the load balancer: \(error)\n")
                throw Exit.no
            }
            guard live.assignment.fromTotal == 0 else {
                let servers = live.assignment.from.map { "\($0.server)=\($0.weight)" }.joined(separator: " ")
                let why = "\(from)'s live weight is \(live.assignment.fromTotal) (\(servers)), not 0: it still gets "
                    + "\(formatPlain(100 - live.effectivePercentToTarget))% of new traffic; move it away first"
                switch global.output {
                case .text: printError("switchover drain: refused: \(why)\n")
                case .json: printJSON(["outcome": "refused", "detail": why, "liveWeight": live.assignment.fromTotal])
                }
                throw Exit.no
            }
            let at = now()
            runID = try journal.startRun(RunRecord(from: from, to: toName, policy: policyName, startedAt: at, pid: getpid()))
            try PolicyRecord.record(chosen, run: runID, in: journal, at: at, note: "drain-only run \(runID) began under policy \(policyName)")
            try journal.append(JournalEvent(run: runID, at: at, kind: "drainOnly", detail: jsonString([
                "message": "drain-only run: the cutover was made elsewhere; \(from)'s live weight read 0 (\(formatPlain(live.effectivePercentToTarget))% to \(toName))",
                "liveWeight": "0",
            ])))
            state = RunSetup.drainOnlyState(policy: chosen, percentToTarget: live.effectivePercentToTarget, now: at)
            preflight = .passed
        }

        let reporter = makeReporter(logger: logger)
        let unfinished = try journal.unfinishedIntents(run: runID)
        let coordinator = Coordinator(engine: CutoverEngine(policy: chosen, from: from, to: toName), runID: runID,
                                      journal: journal, router: router, observer: observer, sources: [:], state: state,
                                      unfinishedIntents: unfinished, reporter: reporter, logger: logger, goal: .drained,
                                      commandsValidSince: Instant(lock.acquiredAt))
        let service = CoordinatorService(coordinator: coordinator, preflight: preflight, resumeCheck: resumeCheck)
        let failed = await supervise(service, logger: logger)
        let final = await coordinator.currentState
        let view = DrainView(state: final, policy: chosen, now: now())
        func report(_ line: String, outcome: String) {
            switch global.output {
            case .text: print(line)
            case .json:
                var object: [String: Any] = ["outcome": outcome, "run": runID, "phase": final.phase.rawValue, "message": line]
                if let view { object["drain"] = view.json }
                printJSON(object)
            }
        }
        if let failed {
            guard await coordinator.touchedLoadBalancer else {
                global.journalFailure("drain", "the coordinator failed before it changed anything on the load balancer: \(failed)")
            }
            // The drain did not complete: exit 1 (not drained), never a code scripts do not know.
            let line = "coordinator failed: \(failed); \(from) is not known to be drained and its drain state may have "
                + "changed; `switchover status` shows where it is; `switchover drain \(from)` goes on (run \(runID))"
            printError("switchover drain: \(line)\n")
            if global.output == .json { report(line, outcome: "failed") }
            throw Exit.no
        }
        switch service.outcome {
        case .drained(let reason):
            report("drained: \(from) (\(reason)); `switchover decommission \(from)` records that it may be torn down (run \(runID))",
                   outcome: "drained")
        case .decommissioned(let reason):
            report("decommissioned: \(from) may be torn down (\(reason)) (run \(runID))", outcome: "decommissioned")
        case .drainTimedOut(let reason):
            report("drain timed out: \(reason); \(final.lastReadBack(from: from, to: toName)) (run \(runID))", outcome: "drainTimedOut")
            throw Exit.no
        case .preflightFailed(let failures):
            report("refused: not draining \(from): " + failures.joined(separator: "; ") + "; nothing was changed (run \(runID))",
                   outcome: "refused")
            throw Exit.no
        case .rolledBack(let reason, _, _):
            report("rolled back: \(reason); all traffic on \(from) (run \(runID))", outcome: "rolledBack")
            throw Exit.no
        case .aborted(let reason):
            report("aborted: \(reason)", outcome: "aborted")
            throw Exit.no
        case .promoted:
            report("promoted (run \(runID))", outcome: "promoted")
        case .stopped, nil:
            report("stopped while draining \(from); `switchover drain \(from)` goes on (run \(runID))", outcome: "stopped")
            throw ExitCode(130)
        }
    }
}

/// A `[String: String]` as one JSON object (sorted keys), for journal details.
func jsonString(_ object: [String: String]) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    return String(decoding: data, as: UTF8.self)
}
