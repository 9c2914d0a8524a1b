import Foundation
import Logging
import ServiceLifecycle
import UnixSignals
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverNet
import SwitchoverSignals
import SwitchoverStore
#if canImport(Glibc)
import Glibc
#endif

/// What `run` or `drain` came to, for the command line to print and exit with.
public struct RunReport: Sendable {
    /// The JSON `outcome`: `promoted`, `drained`, `decommissioned`, `drainTimedOut`,
    /// `rolledBack`, `aborted`, `stopped`, `failed`, `leaseLost`, `refused`, `preflightFailed`,
    /// or the phase a finished run already stands at.
    public var outcome: String
    /// 0 yes, 1 no, 2 bad input (nothing changed), 130 stopped by a signal.
    public var exitCode: Int32
    /// The verdict (stdout), or why it refused or failed (stderr).
    public var message: String
    /// Whether `message` is the verdict (stdout) rather than a refusal or failure (stderr).
    public var isVerdict: Bool
    /// Each failed preflight check (JSON `failures`).
    public var failures: [String] = []
    /// Said on stderr before the message (an edited policy adopted, ...).
    public var notes: [String] = []
    public var runID: Int64?
    public var state: CutoverState?
    /// FROM's drain, when the run has one.
    public var drain: DrainView?

    init(_ outcome: String, exitCode: Int32, _ message: String, isVerdict: Bool = true, run: Int64? = nil,
         state: CutoverState? = nil) {
        self.outcome = outcome
        self.exitCode = exitCode
        self.message = message
        self.isVerdict = isVerdict
        self.runID = run
        self.state = state
    }

    static func refused(_ why: String, exitCode: Int32 = 2, run: Int64? = nil) -> RunReport {
        RunReport("refused", exitCode: exitCode, "refused: \(why)", isVerdict: false, run: run)
    }
}

/// `switchover run` and `switchover drain`: everything between the parsed command line and the
/// verdict. Takes the lease, reads the journal's latest run and decides (start, resume, refuse,
/// nothing to do), checks the policy against the one journaled, runs the preflight, builds the
/// driver, the signal sources and the coordinator, supervises it (SIGINT and SIGTERM stop it
/// gracefully), and maps its outcome to a report.
public enum RunLauncher {
    /// What `run` is asked.
    public struct RunRequest: Sendable {
        public var from: String
        public var to: String
        public var policy: String
        /// Nil: `drained` when the policy has a `drain` section, else `promoted`.
        public var goal: RunGoal?
        public var adoptPolicy: Bool
        /// TEST ONLY: `SWITCHOVER_TEST_CRASH_AFTER_INTENT`, see `WriteAheadInterpreter`.
        public var crashAfterIntent: Int?
        /// `--metrics-address` (and its linger): nil, no `/metrics`.
        public var metrics: MetricsOptions?
        /// `--standby`: wait while another coordinator leads, take over when its lease ends, and
        /// stand by again when this one loses the lease.
        public var standby = false
        public init(from: String, to: String, policy: String, goal: RunGoal?, adoptPolicy: Bool, crashAfterIntent: Int? = nil) {
            self.from = from
            self.to = to
            self.policy = policy
            self.goal = goal
            self.adoptPolicy = adoptPolicy
            self.crashAfterIntent = crashAfterIntent
        }
    }

    /// What `drain` is asked; `to` and `policy` default to the latest run's, or the only choice.
    public struct DrainRequest: Sendable {
        public var from: String
        public var to: String?
        public var policy: String?
        public var adoptPolicy: Bool
        /// `--metrics-address` (and its linger): nil, no `/metrics`.
        public var metrics: MetricsOptions?
        public init(from: String, to: String?, policy: String?, adoptPolicy: Bool) {
            self.from = from
            self.to = to
            self.policy = policy
            self.adoptPolicy = adoptPolicy
        }
    }

    // MARK: - run

    public static func run(_ request: RunRequest, context: RuntimeContext, reporter: any Reporter) async throws -> RunReport {
        guard request.standby else { return try await runOnce(request, context: context, reporter: reporter) }
        while true {
            let report: RunReport
            do {
                report = try await runOnce(request, context: context, reporter: reporter)
            } catch let error as StoreError where error.code == .unavailable {
                // etcd out of reach while taking over, before any coordinator started: nothing
                // was moved; a standby's job is to wait it out.
                reporter.note(kind: "standby", "the journal is unavailable (\(error.context)); standing by again")
                try await Task.sleep(for: .seconds(1))
                continue
            }
            guard report.outcome == "leaseLost" else { return report }
            reporter.note(kind: "standby", "\(report.message); standing by again")
        }
    }

    static func runOnce(_ request: RunRequest, context: RuntimeContext, reporter: any Reporter) async throws -> RunReport {
        let (fromCluster, toCluster, chosen) = try context.pair(from: request.from, to: request.to, policy: request.policy)
        let goal = request.goal ?? (chosen.drainDeclared ? .drained : .promoted)
        let from = request.from, to = request.to
        // One coordinator per journal: refuse before touching anything else (or, standing by,
        // wait for the one that leads to stop).
        let (journal, lease): (any JournalStore, any CoordinatorLease)
        switch try await (request.standby ? standByJournal(context, reporter: reporter) : leaseJournal(context)) {
        case .leased(let leased, let held): (journal, lease) = (leased, held)
        case .refused(let refusal): return refusal
        }
        defer { lease.release() }
        let metrics: MetricsServer?
        switch await openMetrics(request.metrics, logger: context.logger) {
        case .open(let server): metrics = server
        case .refused(let refusal): return refusal
        }
        defer { metrics?.close() }
        let loadBalancer: LoadBalancerPair
        do {
            loadBalancer = try context.loadBalancer(policy: chosen, from: fromCluster, to: toCluster)
        } catch {
            return RunReport("refused", exitCode: 2, "\(error)", isVerdict: false)
        }
        let signers: [String: BodySigner]
        do {
            signers = try HookWiring.signers(for: chosen)
        } catch {
            return RunReport("refused", exitCode: 2, "\(error); nothing was changed", isVerdict: false)
        }
        let http = HTTPClient(logger: context.logger)
        let checks = PreflightChecks(trust: verifyTrustForPreflight, http: http)
        let plan: RunPlan
        do {
            plan = try RunSetup.plan(journal: journal, from: from, to: to, policy: request.policy, goal: goal)
        } catch {
            return RunReport("refused", exitCode: 2, "\(error)", isVerdict: false)
        }

        /// The checks before resuming a journaled run: trust, health, and the live weights against
        /// the journal (a restarted load balancer passes: the resumed run writes them again);
        /// past promotion only TO's health and the weights (see `PreflightChecks.run`).
        func check(resuming journaled: CutoverState) -> @Sendable () async -> PreflightOutcome {
            { [fromCluster, toCluster, chosen] in
                await checks.run(from: fromCluster, to: toCluster, policy: chosen, router: loadBalancer.router,
                                 expectedPercentToTarget: RunSetup.expectedPercentages(resuming: journaled),
                                 journaledInstance: journaled.loadBalancer, restartSeen: journaled.drift?.restarted == true,
                                 pastPromotion: [.promoted, .draining, .drained].contains(journaled.phase))
            }
        }
        var notes: [String] = []
        func resumed(_ journaled: CutoverState, run: RunRecord) throws -> Resumed {
            try resume(journaled, run: run, under: chosen, adopt: request.adoptPolicy, journal: journal, notes: &notes)
        }

        let state: CutoverState
        let runID: Int64
        var preflight: PreflightResult?
        var resumeCheck: (@Sendable () async -> PreflightOutcome)?
        var unfinished: [JournalEvent] = []
        var adopt: (@Sendable (CutoverState) throws -> CutoverState)?
        switch plan {
        case .conflict(let why):
            return .refused(why)
        case .alreadyDone(let run, let done):
            // Done as far as the journal knows; the load balancer says whether it still is.
            let live: LiveWeights
            do {
                live = try await loadBalancer.router.currentWeights()
            } catch {
                return RunReport("failed", exitCode: 2,
                                 "run \(run.id) is \(done.phase.rawValue) in the journal, but the load balancer cannot be read to confirm it: "
                                    + "\(error); nothing was changed",
                                 isVerdict: false, run: run.id, state: done)
            }
            if PreflightChecks.weightFailures(live, router: loadBalancer.router, expected: [done.percentToTarget],
                                              journaledInstance: nil).isEmpty {
                var report = RunReport(done.phase.rawValue, exitCode: 0,
                                       "run \(run.id) from \(run.from) to \(run.to) is already \(done.phase.rawValue); nothing to do "
                                        + "(live weights read back: \(format(live.effectivePercentToTarget))% to \(run.to))",
                                       run: run.id, state: done)
                report.drain = DrainView(state: done, policy: chosen, now: Coordinator.wallClock())
                return report
            }
            // The weights are not where the journal left them: resume, which writes them again
            // when the load balancer restarted and refuses when someone changed them.
            switch try resumed(done, run: run) {
            case .state(let resumedState, let onceChecked):
                state = resumedState
                adopt = onceChecked
            case .refused(let refusal): return refusal
            }
            runID = run.id
            resumeCheck = check(resuming: done)
            unfinished = try journal.unfinishedIntents(run: run.id)
        case .fresh:
            let checked = await checks.run(from: fromCluster, to: toCluster, policy: chosen, router: loadBalancer.router,
                                           expectedPercentToTarget: [0])
            guard checked.result.passed else { return preflightFailed(checked.result.failures) }
            runID = try journal.startRun(RunRecord(from: from, to: to, policy: request.policy, startedAt: Coordinator.wallClock(),
                                                   pid: getpid()))
            try PolicyRecord.record(chosen, run: runID, in: journal, at: Coordinator.wallClock(),
                                    note: "run \(runID) began under policy \(request.policy)")
            if let json = checked.trustReportJSON {
                try journal.append(JournalEvent(run: runID, at: Coordinator.wallClock(), kind: Coordinator.trustEventKind, detail: json))
            }
            for warning in checked.warnings {
                try journal.append(JournalEvent(run: runID, at: Coordinator.wallClock(), kind: "preflightWarning",
                                                detail: WriteAheadInterpreter.encode(["message": warning])))
                reporter.note(kind: "preflightWarning", "warning: \(warning)")
            }
            state = .initial
            preflight = checked.result
        case .resume(let run, let journaled) where journaled.phase == .rolledBack && !journaled.rollbackVerified:
            // Finishing a rollback: only the load balancer must answer. Trust and health are
            // not checked (a failing TO is the usual reason for the rollback, and refusing here
            // would leave TO its share), nor the live weights against the journal.
            let reachable = await checks.loadBalancerReachable(loadBalancer.router)
            guard reachable.passed else { return preflightFailed(reachable.failures) }
            runID = run.id
            state = journaled
            unfinished = try journal.unfinishedIntents(run: run.id)
        case .resume(let run, let journaled):
            // The checks run inside the coordinator, which watches (hard signal, rollback and
            // abort commands) while they do; a failure changes nothing and exits 2.
            switch try resumed(journaled, run: run) {
            case .state(let resumedState, let onceChecked):
                state = resumedState
                adopt = onceChecked
            case .refused(let refusal): return refusal
            }
            runID = run.id
            resumeCheck = check(resuming: journaled)
            unfinished = try journal.unfinishedIntents(run: run.id)
        }

        let hooks = HookWiring(policy: chosen, policyName: request.policy, runID: runID, from: from, to: to, state: state,
                               signers: signers, http: http, journal: journal, fence: lease.token, reporter: reporter,
                               logger: context.logger)
        let sources = makeSignalSources(policy: chosen, client: PrometheusQuerying(client: http))
            .merging(hooks.sources) { prometheus, _ in prometheus }
        metrics?.metrics.begin(run: runID, from: from, to: to, policy: chosen)
        let coordinator = Coordinator(engine: CutoverEngine(policy: chosen, from: from, to: to), runID: runID,
                                      journal: journal, router: loadBalancer.router, observer: loadBalancer.observer, sources: sources, state: state,
                                      unfinishedIntents: unfinished, reporter: hooks.reporter(wrapping: reporting(reporter, metrics)),
                                      logger: context.logger, goal: goal,
                                      lease: lease, crashAfterIntent: request.crashAfterIntent, facts: hooks.facts)
        hooks.notifier?.start()
        var report = await supervise(coordinator, preflight: preflight, resumeCheck: resumeCheck, adopt: adopt, from: from, to: to,
                                     runID: runID, policy: chosen, logger: context.logger, command: "run", metrics: metrics)
        await hooks.notifier?.finish(grace: HookWiring.finishGrace)
        report.notes = notes + report.notes
        return report
    }

    // MARK: - drain

    public static func drain(_ request: DrainRequest, context: RuntimeContext, reporter: any Reporter) async throws -> RunReport {
        let from = request.from
        let (journal, lease): (any JournalStore, any CoordinatorLease)
        switch try leaseJournal(context) {
        case .leased(let leased, let held): (journal, lease) = (leased, held)
        case .refused(let refusal): return refusal
        }
        defer { lease.release() }
        let metrics: MetricsServer?
        switch await openMetrics(request.metrics, logger: context.logger) {
        case .open(let server): metrics = server
        case .refused(let refusal): return refusal
        }
        defer { metrics?.close() }
        let latest = try StateLocation.latestRun(in: journal)
        let plan: DrainPlan
        do {
            plan = try RunSetup.planDrain(journal: journal, from: from)
        } catch {
            return RunReport("refused", exitCode: 2, "\(error)", isVerdict: false)
        }
        let configuration = context.configuration
        var toName = request.to
        var policyName = request.policy
        if case .resume(let run, _) = plan {
            if let to = request.to, to != run.to { return .refused("run \(run.id) moved \(from) to \(run.to), not \(to)") }
            if let policy = request.policy, policy != run.policy {
                return .refused("run \(run.id) runs under policy \(run.policy), not \(policy)")
            }
            toName = run.to
            policyName = run.policy
        } else {
            let sameFrom = latest.flatMap { $0.0.from == from ? $0.0 : nil }
            toName = toName ?? sameFrom?.to
                ?? { let others = configuration.clusters.map(\.name).filter { $0 != from }; return others.count == 1 ? others[0] : nil }()
            policyName = policyName ?? sameFrom?.policy
                ?? (configuration.policies.count == 1 ? configuration.policies[0].name : nil)
        }
        guard let toName else { return .refused("which cluster did traffic move to? Say --to") }
        guard let policyName else { return .refused("which policy's drain section? Say --policy") }
        let (fromCluster, toCluster, chosen) = try context.pair(from: from, to: toName, policy: policyName)
        let loadBalancer: LoadBalancerPair
        do {
            loadBalancer = try context.loadBalancer(policy: chosen, from: fromCluster, to: toCluster)
        } catch {
            return RunReport("refused", exitCode: 2, "\(error)", isVerdict: false)
        }

        let runID: Int64
        let state: CutoverState
        let preflight: PreflightResult?
        var resumeCheck: (@Sendable () async -> PreflightOutcome)?
        var adopt: (@Sendable (CutoverState) throws -> CutoverState)?
        var notes: [String] = []
        switch plan {
        case .refuse(let why):
            return .refused(why)
        case .resume(let run, let journaled):
            runID = run.id
            switch try resume(journaled, run: run, under: chosen, adopt: request.adoptPolicy, journal: journal, notes: &notes) {
            case .state(let resumed, let onceChecked):
                state = resumed
                adopt = onceChecked
            case .refused(let refusal): return refusal
            }
            preflight = nil
            // Before FROM is drained again: its live weights must be the journal's (or a
            // restarted load balancer's, which the coordinator writes back first). Weights
            // someone changed on the same instance refuse: FROM may be carrying traffic.
            resumeCheck = { [loadBalancer] in
                let failures = await PreflightChecks.weights(loadBalancer.router,
                                                             expected: RunSetup.expectedPercentages(resuming: journaled),
                                                             journaledInstance: journaled.loadBalancer,
                                                             restartSeen: journaled.drift?.restarted == true)
                return PreflightOutcome(result: PreflightResult(failures: failures), trustReportJSON: nil)
            }
        case .fresh:
            let live: LiveWeights
            do {
                live = try await loadBalancer.router.currentWeights()
            } catch {
                return RunReport("failed", exitCode: 2, "cannot read the load balancer: \(error); nothing was changed", isVerdict: false)
            }
            guard live.assignment.fromTotal == 0 else {
                let servers = live.assignment.from.map { "\($0.server)=\($0.weight)" }.joined(separator: " ")
                let why = "\(from)'s live weight is \(live.assignment.fromTotal) (\(servers)), not 0: it still gets "
                    + "\(format(100 - live.effectivePercentToTarget))% of new traffic; move it away first"
                return .refused(why, exitCode: 1)
            }
            let at = Coordinator.wallClock()
            runID = try journal.startRun(RunRecord(from: from, to: toName, policy: policyName, startedAt: at, pid: getpid()))
            try PolicyRecord.record(chosen, run: runID, in: journal, at: at, note: "drain-only run \(runID) began under policy \(policyName)")
            try journal.append(JournalEvent(run: runID, at: at, kind: "drainOnly", detail: WriteAheadInterpreter.encode([
                "message": "drain-only run: the cutover was made elsewhere; \(from)'s live weight read 0 (\(format(live.effectivePercentToTarget))% to \(toName))",
                "liveWeight": "0",
            ])))
            state = RunSetup.drainOnlyState(policy: chosen, percentToTarget: live.effectivePercentToTarget, now: at)
            preflight = .passed
        }

        // Notifications (`drained`, `drainTimedOut`, ...) and event hooks tell of a drain too;
        // the engine asks no hook while draining.
        let signers: [String: BodySigner]
        do {
            signers = try HookWiring.signers(for: chosen)
        } catch {
            return RunReport("refused", exitCode: 2, "\(error); nothing was changed", isVerdict: false)
        }
        let hooks = HookWiring(policy: chosen, policyName: policyName, runID: runID, from: from, to: toName,
                               state: state, signers: signers, http: HTTPClient(logger: context.logger), journal: journal,
                               fence: lease.token, reporter: reporter, logger: context.logger)
        metrics?.metrics.begin(run: runID, from: from, to: toName, policy: chosen)
        let coordinator = Coordinator(engine: CutoverEngine(policy: chosen, from: from, to: toName), runID: runID,
                                      journal: journal, router: loadBalancer.router, observer: loadBalancer.observer, sources: [:], state: state,
                                      unfinishedIntents: try journal.unfinishedIntents(run: runID),
                                      reporter: hooks.reporter(wrapping: reporting(reporter, metrics)),
                                      logger: context.logger, goal: .drained, lease: lease, facts: hooks.facts)
        hooks.notifier?.start()
        var report = await supervise(coordinator, preflight: preflight, resumeCheck: resumeCheck, adopt: adopt, from: from, to: toName,
                                     runID: runID, policy: chosen, logger: context.logger, command: "drain", metrics: metrics)
        await hooks.notifier?.finish(grace: HookWiring.finishGrace)
        report.notes = notes + report.notes
        return report
    }

    // MARK: - Supervision and outcomes

    /// A journaled run to resume under the policy as it is now, or the refusal to.
    /// `state` is the journaled state; its adoption function, when the policy was edited and
    /// `--adopt-policy` given, is applied once the checks before resuming passed.
    enum Resumed {
        case state(CutoverState, (@Sendable (CutoverState) throws -> CutoverState)?)
        case refused(RunReport)
    }

    /// The journal and this process's lease on it, or the refusal when a coordinator holds it.
    enum Leased {
        case leased(any JournalStore, any CoordinatorLease)
        case refused(RunReport)
    }

    static func leaseJournal(_ context: RuntimeContext) throws -> Leased {
        let journal = try context.state.journal()
        do {
            return .leased(journal, try context.state.takeLease(journal: journal))
        } catch let error as StoreError where error.code == .lockHeld {
            return .refused(.refused(error.context))
        }
    }

    /// `run --standby`: waits while another coordinator holds the lease, then takes it. A run the
    /// leader ended meanwhile (rolled back, aborted) is not started again: the standby says how
    /// it ended and stops (exit 1), as the leader did. When another coordinator led, the takeover
    /// is journaled (`leaderChanged`) for the timeline.
    static func standByJournal(_ context: RuntimeContext, reporter: any Reporter) async throws -> Leased {
        let journal = try context.state.journal()
        let before = try StateLocation.latestRun(in: journal)
        let leaderBefore = context.state.coordinator
        let lease = try await context.state.standBy(journal: journal) { reporter.note(kind: "standby", $0) }
        if let (run, state) = try StateLocation.latestRun(in: journal) {
            let wasOver = before.map { $0.1.phase.isFinal && $0.0.id == run.id } ?? false
            let over = state.phase.isFinal && !(state.phase == .rolledBack && !state.rollbackVerified)
            if over, !wasOver {
                lease.release()
                return .refused(RunReport(state.phase.rawValue, exitCode: state.phase == .promoted || state.phase == .drained ? 0 : 1,
                                          "run \(run.id) from \(run.from) to \(run.to) ended \(state.phase.rawValue) under the coordinator that led"
                                            + (state.reason.map { " (\($0))" } ?? "") + "; nothing to take over",
                                          run: run.id, state: state))
            }
            if let leaderSeen = leaderBefore {
                try journal.append(JournalEvent(run: run.id, at: Coordinator.wallClock(), kind: "leaderChanged",
                                                detail: WriteAheadInterpreter.encode([
                                                    "message": "coordinator pid \(getpid()) on \(ProcessInfo.processInfo.hostName) took the lease "
                                                        + "(token \(lease.token)) from \(leaderSeen), whose lease ended",
                                                    "token": "\(lease.token)",
                                                ])), fence: lease.token)
            }
        }
        return .leased(journal, lease)
    }

    /// The journaled state to resume under `policy`, or the refusal (see `PolicyRecord`): an
    /// adoption is said in `notes`, and made only once the checks passed.
    static func resume(_ journaled: CutoverState, run: RunRecord, under policy: Policy, adopt: Bool, journal: any JournalStore,
                       notes: inout [String]) throws -> Resumed {
        switch try PolicyRecord.resume(journaled, run: run, under: policy, adopt: adopt, journal: journal, at: Coordinator.wallClock()) {
        case .same(let state):
            return .state(state, nil)
        case .adopt(let changes, let preview, let apply):
            notes.append("adopting the edited policy \(policy.name) once the checks pass (\(changes.joined(separator: "; "))); "
                         + "going on at step \(preview.step) of \(policy.steps.count), "
                         + "\(format(policy.steps[max(0, preview.step - 1)]))% to \(run.to)")
            return .state(journaled, apply)
        case .refused(let why):
            return .refused(.refused(why + "; nothing was changed", run: run.id))
        }
    }

    /// The `/metrics` endpoint, or the refusal (exit 2) when `--metrics-address` is malformed or
    /// cannot be listened on. Opened once this process holds the lease, before anything is read
    /// from or changed on the load balancer.
    enum OpenedMetrics {
        case open(MetricsServer?)
        case refused(RunReport)
    }

    static func openMetrics(_ options: MetricsOptions?, logger: Logger) async -> OpenedMetrics {
        guard let options else { return .open(nil) }
        do {
            let address = try MetricsAddress(parsing: options.address)
            let metrics = MetricsReporter()
            metrics.setLeader(true)
            return .open(try await MetricsServer.bind(address, metrics: metrics, linger: options.linger, logger: logger))
        } catch {
            return .refused(RunReport("refused", exitCode: 2, "\(error)", isVerdict: false))
        }
    }

    /// The person's reporter, and the metrics' when `/metrics` is on.
    static func reporting(_ reporter: any Reporter, _ metrics: MetricsServer?) -> any Reporter {
        guard let metrics else { return reporter }
        return Reporters([reporter, metrics.metrics])
    }

    static func preflightFailed(_ failures: [String]) -> RunReport {
        var report = RunReport("preflightFailed", exitCode: 2, "preflight failed; nothing was changed", isVerdict: false)
        report.failures = failures
        return report
    }

    /// Runs the coordinator in a `ServiceGroup` that turns SIGTERM and SIGINT into a graceful
    /// stop, then maps how it ended to the report.
    static func supervise(_ coordinator: Coordinator, preflight: PreflightResult?,
                          resumeCheck: (@Sendable () async -> PreflightOutcome)?,
                          adopt: (@Sendable (CutoverState) throws -> CutoverState)? = nil, from: String, to: String, runID: Int64,
                          policy: Policy, logger: Logger, command: String, metrics: MetricsServer? = nil) async -> RunReport {
        let service = CoordinatorService(coordinator: coordinator, preflight: preflight, resumeCheck: resumeCheck, adopt: adopt)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let metrics {
            // Listed first: the group shuts its services down last to first, so /metrics
            // outlives the coordinator and can serve its final state.
            metrics.onCoordinatorDone { [service] in
                if case .leaseLost = service.outcome { metrics.metrics.setLeader(false) }
            }
            services.append(.init(service: metrics))
        }
        services.append(.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup))
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        var failure: (any Error)?
        do {
            try await group.run()
        } catch {
            failure = error
        }
        let final = await coordinator.currentState
        func report(_ outcome: String, _ exitCode: Int32, _ message: String) -> RunReport {
            var report = RunReport(outcome, exitCode: exitCode, message + " (run \(runID))", run: runID, state: final)
            report.drain = DrainView(state: final, policy: policy, now: Coordinator.wallClock())
            return report
        }
        if let failure {
            // Before the coordinator asked the load balancer for anything, nothing changed there:
            // exit 2. After, the run began and did not complete: exit 1; weights may have moved.
            guard await coordinator.touchedLoadBalancer else {
                return RunReport("failed", exitCode: 2,
                                 "the coordinator failed before it changed anything on the load balancer: \(failure); nothing was changed",
                                 isVerdict: false, run: runID, state: final)
            }
            var failed = report("failed", 1, command == "run"
                ? "coordinator failed: \(failure); the run did not complete and weights may have moved "
                    + "(journaled: step \(final.step), \(format(final.percentToTarget))% to \(to)); "
                    + "`switchover status` shows the live weights; `switchover run` resumes, `switchover rollback` moves traffic back"
                : "coordinator failed: \(failure); \(from) is not known to be drained and its drain state may have "
                    + "changed; `switchover status` shows where it is; `switchover drain \(from)` goes on")
            failed.isVerdict = false
            return failed
        }
        switch service.outcome {
        case .promoted:
            return report("promoted", 0, command == "run" ? "promoted: all traffic on \(to)" : "promoted")
        case .drained(let reason):
            return report("drained", 0, command == "run"
                ? "drained: all traffic on \(to); \(from) drained (\(reason)); `switchover decommission \(from)` records that it may be torn down"
                : "drained: \(from) (\(reason)); `switchover decommission \(from)` records that it may be torn down")
        case .decommissioned(let reason):
            return report("decommissioned", 0, "decommissioned: \(from) may be torn down (\(reason))")
        case .drainTimedOut(let reason):
            return report("drainTimedOut", 1, "drain timed out: \(reason); \(final.lastReadBack(from: from, to: to))"
                          + (command == "run" ? "; `switchover drain \(from)` tracks it further" : ""))
        case .rolledBack(let reason, let gate, let at):
            let when = at.map { " at \($0.iso8601)" } ?? ""
            let which = gate.map { " by gate \($0)" } ?? ""
            return report("rolledBack", 1, "rolled back\(which)\(when): \(reason); all traffic on \(from)")
        case .aborted(let reason):
            return report("aborted", 1, "aborted: \(reason)")
        case .preflightFailed(let failures):
            if command == "drain" {
                return RunReport("refused", exitCode: 1, "refused: not draining \(from): " + failures.joined(separator: "; ")
                                 + "; nothing was changed (run \(runID))", run: runID, state: final)
            }
            return preflightFailed(failures)
        case .leaseLost(let reason):
            var lost = report("leaseLost", 1, "lost the lease: \(reason); this coordinator stopped at once and moved no weight since; "
                              + "another coordinator or `switchover rollback` holds the journal now; `switchover status` shows where the run is")
            lost.isVerdict = false
            return lost
        case .stopped, nil:
            return report("stopped", 130, command == "run"
                ? "stopped at step \(final.step), \(format(final.percentToTarget))% to \(to); `switchover run` resumes"
                : "stopped while draining \(from); `switchover drain \(from)` goes on")
        }
    }
}
