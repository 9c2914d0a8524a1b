import ArgumentParser
import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverNet
import SwitchoverReport
import SwitchoverRuntime
import SwitchoverSignals
import SwitchoverStore
#if canImport(Glibc)
import Glibc
#endif

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
            SIGTERM (weights left as they are; run again to resume).
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

    func validate() throws {
        if let until, RunGoal(rawValue: until) == nil {
            throw ValidationError("--until \(until) is not a goal; known: \(RunGoal.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() async throws {
        try await global.guardingJournal("run") { try await execute() }
    }

    func execute() async throws {
        let logger = bootstrapLogging()
        let (_, fromCluster, toCluster, chosen) = try global.requirePair(from: from, to: to, policy: policy)
        let goal = until.flatMap(RunGoal.init(rawValue:)) ?? (chosen.drainDeclared ? .drained : .promoted)

        // One coordinator per journal: refuse before touching anything else.
        let lock: CoordinatorLock
        do {
            lock = try CoordinatorLock(statePath: global.state)
        } catch let error as StoreError where error.code == .lockHeld {
            printError("switchover run: refused: \(error.context)\n")
            throw Exit.inputError
        }
        defer { lock.release() }

        let journal = try SQLiteJournal(path: global.state)
        let router: any WeightRouter, observer: any TrafficObserver
        do {
            (router, observer) = try DriverRegistry.standard.make(policy: chosen, from: fromCluster, to: toCluster, logger: logger)
        } catch {
            printError("switchover run: \(error)\n")
            throw Exit.inputError
        }
        let http = HTTPClient(logger: logger)
        let checks = PreflightChecks(trust: preflightTrust, http: http)

        let plan: RunPlan
        do {
            plan = try RunSetup.plan(journal: journal, from: from, to: to, policy: policy, goal: goal)
        } catch {
            printError("switchover run: \(error)\n")
            throw Exit.inputError
        }
        let state: CutoverState
        let runID: Int64
        let preflight: PreflightResult?
        var resumeCheck: (@Sendable () async -> PreflightOutcome)?
        var unfinished: [JournalEvent] = []
        /// The checks before resuming a journaled run: trust, health, and the live weights against
        /// the journal (a restarted load balancer passes: the resumed run writes them again).
        func check(resuming journaled: CutoverState) -> @Sendable () async -> PreflightOutcome {
            { [fromCluster, toCluster, chosen] in
                await checks.run(from: fromCluster, to: toCluster, policy: chosen, router: router,
                                 expectedPercentToTarget: RunSetup.expectedPercentages(resuming: journaled),
                                 journaledInstance: journaled.loadBalancer)
            }
        }
        switch plan {
        case .conflict(let why):
            printError("switchover run: refused: \(why)\n")
            throw Exit.inputError
        case .alreadyDone(let run, let done):
            // Done as far as the journal knows; the load balancer says whether it still is.
            let live: LiveWeights
            do {
                live = try await router.currentWeights()
            } catch {
                printError("switchover run: run \(run.id) is \(done.phase.rawValue) in the journal, but the load balancer cannot be read to confirm it: \(error)\n")
                throw Exit.no
            }
            if PreflightChecks.weightFailures(live, router: router, expected: [done.percentToTarget],
                                              journaledInstance: nil).isEmpty {
                report("run \(run.id) from \(run.from) to \(run.to) is already \(done.phase.rawValue); nothing to do "
                       + "(live weights read back: \(formatPlain(live.effectivePercentToTarget))% to \(run.to))",
                       outcome: done.phase.rawValue, run: run.id, state: done)
                return
            }
            // The weights are not where the journal left them: resume, which writes them again
            // when the load balancer restarted and refuses when someone changed them.
            runID = run.id
            state = try resumeUnderPolicy(done, run: run, policy: chosen, journal: journal)
            preflight = nil
            resumeCheck = check(resuming: done)
            unfinished = try journal.unfinishedIntents(run: run.id)
        case .fresh:
            let checked = await checks.run(from: fromCluster, to: toCluster, policy: chosen, router: router,
                                           expectedPercentToTarget: [0])
            try refuseUnlessPassed(checked.result)
            runID = try journal.startRun(RunRecord(from: from, to: to, policy: policy, startedAt: now(), pid: getpid()))
            try PolicyRecord.record(chosen, run: runID, in: journal, at: now(), note: "run \(runID) began under policy \(policy)")
            try journalTrust(checked, run: runID, in: journal)
            state = .initial
            preflight = checked.result
        case .resume(let run, let journaled) where journaled.phase == .rolledBack && !journaled.rollbackVerified:
            // Finishing a rollback: only the load balancer must answer. Trust and health are
            // not checked (a failing TO is the usual reason for the rollback, and refusing here
            // would leave TO its share), nor the live weights against the journal.
            try refuseUnlessPassed(await checks.loadBalancerReachable(router))
            runID = run.id
            state = journaled
            preflight = nil
            unfinished = try journal.unfinishedIntents(run: run.id)
        case .resume(let run, let journaled):
            // The checks run inside the coordinator, which watches (hard signal, rollback and
            // abort commands) while they do; a failure changes nothing and exits 2.
            runID = run.id
            state = try resumeUnderPolicy(journaled, run: run, policy: chosen, journal: journal)
            preflight = nil
            resumeCheck = check(resuming: journaled)
            unfinished = try journal.unfinishedIntents(run: run.id)
        }

        let reporter = makeReporter(logger: logger)
        let sources = makeSignalSources(policy: chosen, client: PrometheusQuerying(client: http))
        let coordinator = Coordinator(engine: CutoverEngine(policy: chosen, from: from, to: to), runID: runID,
                                      journal: journal, router: router, observer: observer, sources: sources, state: state,
                                      unfinishedIntents: unfinished, reporter: reporter, logger: logger, goal: goal,
                                      commandsValidSince: Instant(lock.acquiredAt))
        let service = CoordinatorService(coordinator: coordinator, preflight: preflight, resumeCheck: resumeCheck)
        if let error = await supervise(service, logger: logger) {
            // Before the coordinator asked the load balancer for anything, nothing changed there:
            // exit 2 (a journal it could not write, say). After, the run began and did not
            // complete: exit 1 (the contract's "aborted"); weights may have moved.
            guard await coordinator.touchedLoadBalancer else {
                global.journalFailure("run", "the coordinator failed before it changed anything on the load balancer: \(error)")
            }
            let final = await coordinator.currentState
            let line = "coordinator failed: \(error); the run did not complete and weights may have moved "
                + "(journaled: step \(final.step), \(formatPlain(final.percentToTarget))% to \(to)); "
                + "`switchover status` shows the live weights; `switchover run` resumes, `switchover rollback` moves traffic back (run \(runID))"
            printError("switchover run: \(line)\n")
            if global.output == .json { report(line, outcome: "failed", run: runID, state: final) }
            throw Exit.no
        }
        let final = await coordinator.currentState
        switch service.outcome {
        case .promoted:
            report("promoted: all traffic on \(to) (run \(runID))", outcome: "promoted", run: runID, state: final)
        case .drained(let reason):
            report("drained: all traffic on \(to); \(from) drained (\(reason)); `switchover decommission \(from)` records that it may be torn down (run \(runID))",
                   outcome: "drained", run: runID, state: final)
        case .decommissioned(let reason):
            report("decommissioned: \(from) may be torn down (\(reason)) (run \(runID))", outcome: "decommissioned",
                   run: runID, state: final)
        case .drainTimedOut(let reason):
            report("drain timed out: \(reason); \(final.lastReadBack(from: from, to: to)); `switchover drain \(from)` tracks it further (run \(runID))",
                   outcome: "drainTimedOut", run: runID, state: final)
            throw Exit.no
        case .preflightFailed(let failures):
            try refuseUnlessPassed(PreflightResult(failures: failures))
        case .rolledBack(let reason, let gate, let at):
            let when = at.map { " at \(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: $0.seconds)))" } ?? ""
            let which = gate.map { " by gate \($0)" } ?? ""
            report("rolled back\(which)\(when): \(reason); all traffic on \(from)", outcome: "rolledBack", run: runID,
                   state: final)
            throw Exit.no
        case .aborted(let reason):
            report("aborted: \(reason)", outcome: "aborted", run: runID, state: final)
            throw Exit.no
        case .stopped, nil:
            report("stopped at step \(final.step), \(final.percentToTarget)% to \(to); `switchover run` resumes",
                   outcome: "stopped", run: runID, state: final)
            throw ExitCode(130)
        }
    }

    /// The journaled state to resume under `policy`: refused (exit 2, nothing changed) when the
    /// policy was edited since the run began, unless `--adopt-policy`.
    func resumeUnderPolicy(_ journaled: CutoverState, run: RunRecord, policy: Policy,
                           journal: any JournalStore) throws -> CutoverState {
        switch try PolicyRecord.resume(journaled, run: run, under: policy, adopt: adoptPolicy, journal: journal, at: now()) {
        case .same(let state):
            return state
        case .adopted(let state, let changes):
            printError("switchover run: adopting the edited policy \(policy.name) (\(changes.joined(separator: "; "))); "
                       + "going on at step \(state.step) of \(policy.steps.count), \(formatPlain(policy.steps[max(0, state.step - 1)]))% to \(run.to)\n")
            return state
        case .refused(let why):
            switch global.output {
            case .text: printError("switchover run: refused: \(why); nothing was changed\n")
            case .json: printJSON(["outcome": "refused", "detail": why, "run": run.id])
            }
            throw Exit.inputError
        }
    }

    /// The trust report as evidence in the journal (`trustVerified`, read by `switchover report`).
    func journalTrust(_ checked: PreflightOutcome, run: Int64, in journal: SQLiteJournal) throws {
        guard let json = checked.trustReportJSON else { return }
        try journal.append(JournalEvent(run: run, at: now(), kind: Coordinator.trustEventKind, detail: json))
    }

    func refuseUnlessPassed(_ result: PreflightResult) throws {
        guard !result.passed else { return }
        switch global.output {
        case .text:
            printError("switchover run: preflight failed; nothing was changed:\n"
                       + result.failures.map { "  - \($0)\n" }.joined())
        case .json:
            printJSON(["outcome": "preflightFailed", "failures": result.failures])
        }
        throw Exit.inputError
    }

    /// The final line: stdout, for people and scripts.
    func report(_ line: String, outcome: String, run: Int64, state: CutoverState) {
        switch global.output {
        case .text:
            print(line)
        case .json:
            var object: [String: Any] = ["outcome": outcome, "run": run, "phase": state.phase.rawValue, "step": state.step,
                                         "percentToTarget": jsonNumber(state.percentToTarget), "message": line]
            if let policy = global.loadConfiguration().0.policy(named: policy),
               let drain = DrainView(state: state, policy: policy, now: now()) {
                object["drain"] = drain.json
            }
            printJSON(object)
        }
    }
}
