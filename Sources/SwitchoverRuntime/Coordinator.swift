import Foundation
import Logging
import Synchronization
import ServiceLifecycle
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverSignals
import SwitchoverStore
#if canImport(Glibc)
import Glibc
#endif

/// Where `switchover run` stops. At `promoted` the coordinator stops before the engine's next
/// tick would start the drain (FROM's servers are left as they are, weight 0). At `drained` it
/// goes on: `setDrain(FROM)`, FROM's sessions and counters sampled every `policy.sampling`, and
/// stops once the drain detector says drained, or at the drain's timeout (what is still open is
/// reported), or when the run is decommissioned or rolled back meanwhile.
public enum RunGoal: String, Sendable, CaseIterable {
    case promoted
    case drained
}

/// How a run (or one coordinator's share of it) ended.
public enum RunOutcome: Sendable, Equatable {
    case promoted
    /// `gate` is the gate whose failures caused it (nil for the hard signal or a command).
    case rolledBack(reason: String, gate: String?, at: Instant?)
    case aborted(reason: String)
    /// Stopped by SIGINT/SIGTERM: weights left as they are, the run can be resumed.
    case stopped
    /// Goal `drained` reached: `reason` says what the detector saw.
    case drained(reason: String)
    /// The checks before resuming failed (each failure a sentence); nothing was changed.
    case preflightFailed([String])
    /// The drain's `timeout` passed first; `reason` says what is still open.
    case drainTimedOut(reason: String)
    /// Decommissioned (by command) while the coordinator tracked the drain.
    case decommissioned(reason: String)
}

/// The coordinator of one run: the only process that moves weights for its journal.
///
/// Data flows one way per tick: load-balancer sample → engine → actions → driver → journal.
/// Every `policy.sampling` it takes a sample (journaled), feeds it to the engine (the hard
/// signal reacts on the sample itself), feeds pending manual commands and finished gate
/// evaluations, then a tick. External gates (Prometheus) run concurrently in child tasks, so a
/// Prometheus that hangs never delays the sampling loop. Every input's resulting state is
/// journaled; every weight change is journaled as an intent before it is performed and as a
/// result after its read-back (the intent and the state expecting it in one transaction).
///
/// An actor because gate evaluations finish on other tasks and hand their results in; the
/// journal is only touched from here.
public actor Coordinator {
    public let engine: CutoverEngine
    public let runID: Int64
    let journal: any JournalStore
    let router: any WeightRouter
    let observer: any TrafficObserver
    let sampler: LoadBalancerSampler
    let sources: [String: any SignalSource]
    let reporter: any Reporter
    let logger: Logger
    let goal: RunGoal
    /// Commands journaled before this instant were submitted while no coordinator held the
    /// journal, and are refused rather than carried out late. It is when this process took the
    /// coordinator lock: a command journaled after that (while the preflight ran, say) was
    /// addressed to this coordinator and is never stale.
    let commandsValidSince: Instant
    let clock: @Sendable () -> Instant

    var state: CutoverState
    /// Gate results handed in by evaluation tasks, fed at the next loop turn.
    var inbox: [EngineInput] = []
    /// Engine intent number → journal intent id, for intents journaled but not finished before
    /// a crash: re-applying one finishes that same journal intent (exactly once), not a new one.
    var unfinished: [Int: Int64]
    var lastPrune: Instant
    var sampleFailureLogged = false
    var rollbackGate: String?
    var rollbackAt: Instant?
    /// The preflight's result, fed when the engine asks for it (see `run(preflight:resumeCheck:)`).
    var preflightAnswer: PreflightResult?
    /// The checks before resuming, once they finished (see `watchWhileChecking`).
    var resumeCheckResult: PreflightOutcome?
    /// Test hook, see `crashAfterIntentFromEnvironment`.
    let crashAfterIntent: Int?
    var intentsBegun = 0
    /// True once this process asked the load balancer to change anything (weights, drain or
    /// ready state, sessions): until then a failure has changed nothing there.
    public private(set) var touchedLoadBalancer = false
    /// Loop turns (samples) taken by this process: `drained` is only believed after a fresh
    /// sample, never from a journaled state alone.
    var turnsTaken = 0
    /// When the last `drainProgress` event was journaled.
    var lastDrainProgress: Instant?
    /// How often a draining run journals its progress (sessions, hold, ETA).
    let drainProgressEvery: Duration = .seconds(5)

    /// - Parameters:
    ///   - state: the state to start from (`.initial` for a fresh run, the journaled snapshot
    ///     on resume).
    ///   - unfinishedIntents: the journal's unfinished intents of this run (on resume).
    ///   - commandsValidSince: when this process took the coordinator lock (see
    ///     `commandsValidSince`); now when nil.
    public init(engine: CutoverEngine, runID: Int64, journal: sending any JournalStore,
                router: any WeightRouter, observer: any TrafficObserver, sources: [String: any SignalSource], state: CutoverState,
                unfinishedIntents: [JournalEvent], reporter: any Reporter, logger: Logger, goal: RunGoal = .promoted,
                commandsValidSince: Instant? = nil,
                clock: @escaping @Sendable () -> Instant = Coordinator.wallClock) {
        self.engine = engine
        self.runID = runID
        self.journal = journal
        self.router = router
        self.observer = observer
        self.sampler = LoadBalancerSampler(router: router, observer: observer)
        self.sources = sources
        self.reporter = reporter
        self.logger = logger
        self.goal = goal
        self.clock = clock
        self.state = state
        let now = clock()
        self.commandsValidSince = min(commandsValidSince ?? now, now)
        self.lastPrune = now
        var map: [Int: Int64] = [:]
        for intent in unfinishedIntents {
            if case .setWeights(let number, _, _, _)? = try? journal.action(ofIntent: intent) {
                map[number] = intent.intentID ?? intent.sequence
            }
        }
        self.unfinished = map
        self.crashAfterIntent = Coordinator.crashAfterIntentFromEnvironment()
    }

    /// The wall clock, in the journal's resolution.
    public static let wallClock: @Sendable () -> Instant = {
        Instant(millisecondsSinceEpoch: Int64((Date().timeIntervalSince1970 * 1000).rounded()))
    }

    /// TEST ONLY. `SWITCHOVER_TEST_CRASH_AFTER_INTENT=N` makes the coordinator `_exit(137)` right
    /// after it has journaled its N-th weight intent in this process, before performing it:
    /// the crash between intent and result that resume must repair. Unset in normal use; it is
    /// read once, and nothing else depends on it.
    static func crashAfterIntentFromEnvironment() -> Int? {
        guard let raw = ProcessInfo.processInfo.environment["SWITCHOVER_TEST_CRASH_AFTER_INTENT"] else { return nil }
        return Int(raw)
    }

    public var currentState: CutoverState { state }

    // MARK: - The loop

    /// Runs until the goal is reached, the run is rolled back or aborted, or a graceful
    /// shutdown (SIGINT/SIGTERM through the ServiceGroup) stops it.
    ///
    /// `preflight`: for a fresh run, the result of the preflight the caller ran before journaling
    /// the run (the engine's first tick asks for it and gets this answer); nil on resume, where
    /// the engine's `recover` puts the world back where the journal says it is.
    /// `resumeCheck`: on resume, the checks to run before anything is changed (trust, health,
    /// live weights against the journal). They run here, while the coordinator already watches:
    /// every `sampling` it samples the load balancer (the hard signal can roll back) and carries
    /// out `rollback` and `abort` commands, so the emergency exit works while a slow health
    /// endpoint is probed. When they fail and nothing happened meanwhile, `run` returns
    /// `.preflightFailed` having changed nothing; when they pass, `recover` runs (after a fresh
    /// reading of the live weights) and so does a run that stopped before its own preflight was
    /// answered, which gets this answer. Nil: resume without checks (finishing a rollback).
    public func run(preflight: PreflightResult?,
                    resumeCheck: (@Sendable () async -> PreflightOutcome)? = nil) async throws -> RunOutcome {
        preflightAnswer = preflight
        try journalAppend("coordinatorStarted",
                          "coordinator pid \(getpid()) \(preflight == nil ? "resumed" : "started") run \(runID) at phase \(state.phase.rawValue), step \(state.step)")
        return try await withThrowingDiscardingTaskGroup(returning: RunOutcome.self) { group in
            try acknowledgeStaleCommands()
            if preflight != nil {
                // The tick asks for the preflight (`runPreflight`), answered with `preflightAnswer`.
                try await feed(.tick, group: &group)
            } else {
                // An emergency during the checks (a rollback by the hard signal or a command, an
                // abort) shows as a new weight change or an aborted run; samples alone may move
                // a drain's phase, which is not one.
                let resumedPhase = state.phase, resumedIntent = state.lastIntent
                if let resumeCheck {
                    let checked = try await watchWhileChecking(resumeCheck, group: &group)
                    if let checked {
                        guard checked.result.passed || !untouched(since: resumedPhase, intent: resumedIntent) else {
                            group.cancelAll()
                            return .preflightFailed(checked.result.failures)
                        }
                        try journalTrust(checked)
                        preflightAnswer = checked.result
                    }
                }
                // An emergency command during the checks (rollback, abort) already decided what
                // happens next; otherwise put the world back where the journal says it is.
                if untouched(since: resumedPhase, intent: resumedIntent) {
                    let now = clock()
                    let live = try? await router.currentWeights()
                    let reading = live.map { LoadBalancerSampler.reading($0, router: router, at: now) }
                    let (recovered, actions) = engine.recover(state, live: reading, now: now)
                    try saveAndPerform(recovered, actions, now: now, group: &group)
                    try await performPending(actions, group: &group)
                }
            }

            let period = engine.policy.sampling
            var deadline = ContinuousClock.now
            while true {
                if let outcome = outcome() {
                    reporter.finish(nil)
                    group.cancelAll()
                    return outcome
                }
                if Task.isShuttingDownGracefully || Task.isCancelled {
                    try journalAppend("coordinatorStopped",
                                      "coordinator stopped by signal at phase \(state.phase.rawValue), step \(state.step), \(format(state.percentToTarget))% to \(engine.to); weights left as they are; `switchover run` resumes")
                    reporter.finish(nil)
                    group.cancelAll()
                    return .stopped
                }
                try await turn(group: &group)
                deadline = deadline.advanced(by: period)
                let now = ContinuousClock.now
                if deadline < now { deadline = now }
                do {
                    try await Task.sleep(until: deadline, clock: .continuous)
                } catch {
                    // Cancelled: the loop notices above and stops.
                }
            }
        }
    }

    /// Runs `check` while watching the run as it stands: every `sampling`, a sample (journaled, fed
    /// to the engine: the hard signal) and the `rollback` and `abort` commands in the journal.
    /// Other commands wait for the checks. Returns the checks' outcome, or nil when a stop signal
    /// came first. Nothing is ticked and nothing re-applied meanwhile.
    func watchWhileChecking(_ check: @escaping @Sendable () async -> PreflightOutcome,
                            group: inout ThrowingDiscardingTaskGroup<any Error>) async throws -> PreflightOutcome? {
        group.addTask { [weak self] in
            let outcome = await check()
            await self?.checked(outcome)
        }
        let period = engine.policy.sampling
        while resumeCheckResult == nil {
            if Task.isShuttingDownGracefully || Task.isCancelled { return nil }
            turnsTaken += 1
            let now = clock()
            if let sample = try? await sampler.sample(at: now) {
                try journal.recordSample(run: runID, sample)
                try await feed(.loadBalancerSample(sample), group: &group)
            }
            for command in try journal.pendingCommands() {
                guard let manual = CommandCodec.decode(name: command.command, arguments: command.arguments) else { continue }
                switch manual {
                case .rollback, .abort:
                    try await feed(.command(manual, id: command.id), group: &group)
                default:
                    continue
                }
            }
            if resumeCheckResult != nil { break }
            try? await Task.sleep(for: period)
        }
        return resumeCheckResult
    }

    /// True when nothing but samples changed the run since it stood at `phase` with `intent`.
    func untouched(since phase: Phase, intent: Int) -> Bool {
        state.lastIntent == intent && (state.phase != .aborted || phase == .aborted)
    }

    func checked(_ outcome: PreflightOutcome) {
        resumeCheckResult = outcome
    }

    /// The trust report as evidence (`trustVerified`, which `switchover report` shows).
    func journalTrust(_ outcome: PreflightOutcome) throws {
        guard let json = outcome.trustReportJSON else { return }
        try journal.append(JournalEvent(run: runID, at: clock(), kind: Self.trustEventKind, detail: json))
    }

    /// The journal kind of the trust evidence (the report reads it under this name).
    public static let trustEventKind = "trustVerified"

    /// Carries out one journaled command with no coordinator running (`switchover rollback`
    /// after the coordinator died): feeds it to the engine and performs what follows until the
    /// engine has nothing more to do right now, retrying an unverified rollback a few times.
    /// The caller holds the coordinator lock, so no coordinator starts meanwhile.
    ///
    /// A `decommission` first takes a fresh sample of the load balancer: the evidence it is
    /// judged on and journaled with is FROM as it is now, not as the last coordinator left it
    /// (traffic that reached FROM since turns a drained run back to draining, and it refuses).
    public func runOffline(_ command: ManualCommand, id: Int64) async throws -> CutoverState {
        try journalAppend("offlineCommand", "\(command.name) carried out by pid \(getpid()) with no coordinator running")
        return try await withThrowingDiscardingTaskGroup(returning: CutoverState.self) { group in
            if case .decommission(let force, _) = command {
                // Judged on FROM as it is now, read by this process: the last coordinator's
                // reading, however recent, is from before whatever happened since (a restarted
                // load balancer gives FROM its weight back). Unread, it is refused unless forced.
                do {
                    let (sample, live) = try await sampler.sampleWithWeights(at: clock())
                    try journal.recordSample(run: runID, sample)
                    try await feed(.loadBalancerSample(sample), group: &group)
                    if let live {
                        try await feed(.liveWeights(LoadBalancerSampler.reading(live, router: router, at: sample.at)),
                                       group: &group)
                    }
                } catch {
                    try journalAppend("sampleFailed", "no fresh sample of the load balancer before decommission: \(error)")
                    if !force {
                        let why = "no fresh evidence that \(engine.from) is drained: the load balancer could not be read just now "
                            + "(\(error)); decommission is decided on a reading taken by this command; `--force --reason TEXT` records it anyway"
                        try journal.append(run: runID, at: clock(), EngineEvent(.commandRefused, "decommission refused: \(why)", phase: state.phase))
                        try journal.acknowledgeCommand(id, at: clock(), accepted: false, outcome: why)
                        group.cancelAll()
                        return state
                    }
                }
            }
            if state.pendingWeights != nil {
                // A weight change the last coordinator journaled but never finished (it died
                // mid-rollback, say): finish it first, as `run` does on resume, so the engine
                // is not left waiting for a read-back that never comes. Only then: other
                // `recover` actions (re-applying a step, re-draining FROM) are pointless
                // right before a rollback.
                let now = clock()
                let (recovered, actions) = engine.recover(state, now: now)
                try saveAndPerform(recovered, actions, now: now, group: &group)
                try await performPending(actions, group: &group)
            }
            try await feed(.command(command, id: id), group: &group)
            var tries = 0
            while state.phase == .rolledBack, !state.rollbackVerified, tries < 5 {
                tries += 1
                try await Task.sleep(for: .milliseconds(200))
                try await feed(.tick, group: &group)
            }
            group.cancelAll()
            return state
        }
    }

    /// One loop turn: sample, commands, gate results, tick.
    func turn(group: inout ThrowingDiscardingTaskGroup<any Error>) async throws {
        turnsTaken += 1
        let now = clock()
        var sample: LoadBalancerSample?
        var live: LiveWeights?
        do {
            (sample, live) = try await sampler.sampleWithWeights(at: now)
        } catch is CancellationError {
            return
        } catch {
            // A missed sample is not a sample of zeros: the engine simply gets none this turn
            // (the hard signal and gates judge the next window), and the person is told once.
            if !sampleFailureLogged {
                reporter.notify("could not sample the load balancer: \(error)")
                try journalAppend("sampleFailed", "\(error)")
                sampleFailureLogged = true
            }
        }
        if let sample {
            if sampleFailureLogged {
                reporter.notify("load balancer answering again")
                sampleFailureLogged = false
            }
            try journal.recordSample(run: runID, sample)
            try await feed(.loadBalancerSample(sample), group: &group)
        }
        if let live {
            try await feed(.liveWeights(LoadBalancerSampler.reading(live, router: router, at: now)), group: &group)
        }
        for command in try journal.pendingCommands() {
            guard let manual = CommandCodec.decode(name: command.command, arguments: command.arguments) else {
                try journal.acknowledgeCommand(command.id, at: clock(), accepted: false,
                                               outcome: "unknown command '\(command.command)'")
                continue
            }
            try await feed(.command(manual, id: command.id), group: &group)
            // The engine acknowledges every command it is given an id for; make sure of it.
            if let record = try journal.command(command.id), record.acknowledgedAt == nil {
                try journal.acknowledgeCommand(command.id, at: clock(), accepted: false,
                                               outcome: "\(manual.name) had no effect in phase \(state.phase.rawValue)")
            }
        }
        let results = inbox
        inbox = []
        for input in results { try await feed(input, group: &group) }
        try await feed(.tick, group: &group)
        let at = clock()
        if at - lastPrune >= .seconds(60) {
            lastPrune = at
            let pruned = try journal.pruneSamples(now: at, retention: .standard)
            if pruned > 0 { logger.debug("pruned samples", metadata: ["rows": "\(pruned)"]) }
        }
    }

    /// Commands left from before this coordinator took the lock (submitted while none was
    /// running) are refused rather than carried out late: a person who typed `rollback` an hour
    /// ago while nothing listened must not have it happen now by surprise.
    func acknowledgeStaleCommands() throws {
        for command in try journal.pendingCommands() where command.issuedAt < commandsValidSince {
            try journal.acknowledgeCommand(command.id, at: clock(), accepted: false,
                                           outcome: "issued while no coordinator was running; not carried out")
        }
    }

    func outcome() -> RunOutcome? {
        // Weights being written again (a restarted load balancer forgot them) are not in place
        // yet: no outcome claims a state that was not read back.
        let settled = state.pendingWeights == nil && state.drift == nil
        if goal == .promoted, [.promoted, .draining, .drained, .decommissioned].contains(state.phase) {
            return settled || state.phase == .decommissioned ? .promoted : nil
        }
        switch state.phase {
        case .promoted:
            return nil
        case .draining:
            guard let drain = state.drain, drain.status == .timedOut else { return nil }
            return .drainTimedOut(reason: "not drained after \(formatDuration(engine.policy.drain.timeout)): \(drain.reason)")
        case .drained:
            guard turnsTaken > 0, settled else { return nil }
            return .drained(reason: state.drain?.reason ?? "drained")
        case .decommissioned:
            return .decommissioned(reason: state.reason ?? "drained")
        case .rolledBack:
            guard state.rollbackVerified, state.pendingWeights == nil else { return nil }
            return .rolledBack(reason: state.reason ?? "rolled back", gate: rollbackGate, at: rollbackAt)
        case .aborted:
            return .aborted(reason: state.reason ?? "aborted")
        default:
            return nil
        }
    }

    // MARK: - Inputs and actions

    /// One input to the engine: journal the new state, then perform the actions.
    func feed(_ input: EngineInput, group: inout ThrowingDiscardingTaskGroup<any Error>) async throws {
        let now = clock()
        let (next, actions) = engine.next(state, input, now: now)
        try saveAndPerform(next, actions, now: now, group: &group)
        try await performPending(actions, group: &group)
    }

    /// Adopts `next`, saves it, and performs every action that needs no awaiting (records,
    /// notifications, acknowledgements, starting gate evaluations). Weight changes and drain
    /// changes are done by `performPending`, after the state that expects them is journaled.
    func saveAndPerform(_ next: CutoverState, _ actions: [Action], now: Instant,
                        group: inout ThrowingDiscardingTaskGroup<any Error>) throws {
        state = next
        try journal.saveState(run: runID, at: now, state)
        for action in actions {
            switch action {
            case .record(let event):
                try record(event, at: now)
            case .notify(let message):
                reporter.notify(message)
            case .acknowledge(let id, let accepted, let detail):
                try journal.acknowledgeCommand(id, at: now, accepted: accepted, outcome: detail)
            case .evaluateGates(let evaluation, let gates):
                startEvaluation(evaluation, gates: gates, group: &group)
            case .runPreflight, .setWeights, .setDrain, .setReady, .forceCloseSessions:
                break
            }
        }
        reporter.progress(ProgressSnapshot(state: state, policy: engine.policy, to: engine.to, now: now))
        try journalDrainProgress(now: now)
    }

    /// While draining, every `drainProgressEvery`: FROM's open sessions, the hold's progress, the
    /// ETA and the DNS TTL wait, as a `drainProgress` event (what `status` and the report read
    /// between the detector's own events).
    func journalDrainProgress(now: Instant) throws {
        guard state.phase == .draining, state.drain?.lastSample != nil else { return }
        if let last = lastDrainProgress, now - last < drainProgressEvery { return }
        lastDrainProgress = now
        let view = DrainView(state: state, policy: engine.policy, now: now)
        var evidence = engine.drainEvidence(state, now: now)
        evidence["eta"] = view?.etaText ?? "unknown"
        if let ttl = view?.dnsTTLRemaining { evidence["dnsTTLRemainingMilliseconds"] = "\(ttl.milliseconds)" }
        try record(EngineEvent(.drainProgress, "\(engine.from) draining: " + (view?.summary ?? "no sample yet"),
                               phase: state.phase, evidence: evidence), at: now)
    }

    func performPending(_ actions: [Action], group: inout ThrowingDiscardingTaskGroup<any Error>) async throws {
        for action in actions {
            switch action {
            case .setWeights(let intent, let percent, let step, let purpose):
                let result = try await setWeights(intent: intent, percent: percent, step: step, purpose: purpose)
                try await feed(.weightsApplied(intent: intent, result: result), group: &group)
            case .setDrain(let cluster):
                // Never drain FROM while it carries traffic: its live weight, read right now,
                // must be 0 and TO's not (a restarted load balancer gives FROM its configured
                // weights back). Refused, the intent is journaled as failed; the engine sets the
                // drain again once a reading shows the weights as journaled.
                if let refusal = await drainRefusal(cluster) {
                    let id = try journal.beginIntent(run: runID, at: clock(), action: "setDrain",
                                                     detail: Self.encode(["cluster": cluster]))
                    try journal.finishIntent(id, at: clock(), ok: false, detail: Self.encode(["refused": refusal]))
                    reporter.notify("not putting \(cluster) in drain: \(refusal)")
                    break
                }
                // Envoy has no drain state: FROM's weight 0, already verified, is what stops new
                // requests there, so the drain goes on, and the journal says so.
                try await simpleIntent("setDrain", cluster: cluster,
                                       unsupported: "\(cluster)'s verified weight 0 already sends it no new requests") {
                    try await self.router.setDrain(cluster: cluster)
                }
            case .setReady(let cluster):
                let failure = try await simpleIntent("setReady", cluster: cluster,
                                                     unsupported: "weights alone decide; the rollback's weights follow") {
                    try await self.router.setReady(cluster: cluster)
                }
                // FROM still in drain takes no new requests whatever its weight: the rollback
                // is not done, so its weights intent is reported as not verified and the
                // engine sends the whole rollback (setReady first) again. The weights that
                // follow are still applied; their read-back then arrives stale.
                if let failure, let pending = state.pendingWeights, pending.purpose == .rollback {
                    try await feed(.weightsApplied(intent: pending.intent,
                                                   result: .mismatch(detail: "setReady \(cluster) failed: \(failure)")),
                                   group: &group)
                }
            case .forceCloseSessions(let cluster):
                try await simpleIntent("shutdownSessions", cluster: cluster, unsupported: nil) {
                    try await self.router.shutdownSessions(cluster: cluster)
                }
            case .runPreflight:
                // Preflight ran in the caller before the run was journaled (a failed one changes
                // nothing), or before a run that had not got past it was resumed.
                guard let answer = preflightAnswer else {
                    try journalAppend("preflight", "the engine asked for a preflight and none was run by this process; run `switchover run` to resume")
                    break
                }
                try journalAppend("preflight", "preflight (trust, health, live weights) ran before the run was journaled or resumed: \(answer.passed ? "passed" : "failed")")
                try await feed(.preflight(answer), group: &group)
            case .record, .notify, .acknowledge, .evaluateGates:
                break
            }
        }
    }

    /// Why `cluster` must not be put in drain now, from the live weights read just before, or nil
    /// when it may: it is FROM with live weight 0 while TO has weight.
    func drainRefusal(_ cluster: String) async -> String? {
        let live: LiveWeights
        do {
            live = try await router.currentWeights()
        } catch {
            return "could not read the live weights first: \(error)"
        }
        guard cluster == router.fromCluster.cluster else { return nil }
        let from = live.assignment.from, to = live.assignment.to
        guard live.assignment.fromTotal == 0, live.assignment.toTotal > 0 else {
            let servers = (from + to).map { "\($0.server)=\($0.weight)" }.joined(separator: " ")
            return "it still carries traffic: live weights \(servers) send \(format(100 - live.effectivePercentToTarget))% to \(cluster)"
        }
        return nil
    }

    /// Write-ahead weight change: intent (with the state expecting it) → apply and read back →
    /// result. An unfinished intent from before a crash with the same engine intent number is
    /// finished instead of writing a new one.
    func setWeights(intent: Int, percent: Double, step: Int, purpose: WeightsPurpose) async throws -> WeightsReadBack {
        let now = clock()
        // An unfinished intent from before a crash that a newer one replaces (a rollback
        // decided before it was re-applied) is closed as superseded: it is never applied.
        for (number, id) in unfinished where number < intent {
            unfinished[number] = nil
            try journal.finishIntent(id, at: now, ok: false,
                                     detail: Self.encode(["superseded": "by intent \(intent) (\(purpose.rawValue)); never re-applied"]))
        }
        let journalIntent: Int64
        if let existing = unfinished.removeValue(forKey: intent) {
            journalIntent = existing
            try journalAppend("intentReapplied", "re-applying unfinished intent \(intent) (journal \(existing)): \(format(percent))% to \(engine.to)")
        } else {
            let action = Action.setWeights(intent: intent, percentToTarget: percent, step: step, purpose: purpose)
            let snapshot = state
            journalIntent = try journal.inTransaction {
                let id = try journal.beginIntent(run: runID, at: now, action)
                try journal.saveState(run: runID, at: now, snapshot)
                return id
            }
            intentsBegun += 1
            if let crashAfterIntent, intentsBegun == crashAfterIntent {
                logger.warning("SWITCHOVER_TEST_CRASH_AFTER_INTENT: exiting right after journaling intent \(intent)")
                _exit(137)
            }
        }
        let result: WeightsReadBack
        var ok = false
        var detail: String
        touchedLoadBalancer = true
        do {
            let live = try await router.apply(percentToTarget: percent)
            let wanted = router.translation.weights(percentToTarget: percent, from: router.fromCluster.servers,
                                                    to: router.toCluster.servers)
            let effective = live.effectivePercentToTarget
            if abs(effective - wanted.effectivePercentToTarget) < 1e-6 {
                result = .verified(percentToTarget: effective)
                ok = true
            } else {
                result = .mismatch(detail: "asked for \(format(wanted.effectivePercentToTarget))%, read back \(format(effective))%")
            }
            detail = Self.encode(WeightsResultDetail(percentToTarget: effective,
                                                     servers: Dictionary(live.assignment.all.map { ($0.server, $0.weight) },
                                                                         uniquingKeysWith: { a, _ in a }),
                                                     error: nil))
        } catch {
            result = .mismatch(detail: "\(error)")
            detail = Self.encode(WeightsResultDetail(percentToTarget: nil, servers: [:], error: "\(error)"))
        }
        try journal.finishIntent(journalIntent, at: clock(), ok: ok, detail: detail)
        return result
    }

    /// An intent with no read-back beyond the driver's own. `unsupported`: when the driver says it
    /// cannot do this and that is fine, why (the intent is finished ok, with the driver's words
    /// and this); nil when it is a failure like any other. Returns the failure, nil when done.
    @discardableResult
    func simpleIntent(_ action: String, cluster: String, unsupported: String? = nil,
                      _ body: @Sendable () async throws -> Void) async throws -> String? {
        let id = try journal.beginIntent(run: runID, at: clock(), action: action, detail: "{\"cluster\":\"\(cluster)\"}")
        touchedLoadBalancer = true
        do {
            try await body()
            try journal.finishIntent(id, at: clock(), ok: true, detail: "{}")
            return nil
        } catch let error as LoadBalancerError where error.code == .unsupported && unsupported != nil {
            let note = "\(action) \(cluster): unsupported by \(router.driver) (\(error.message)); \(unsupported ?? "")"
            try journal.finishIntent(id, at: clock(), ok: true,
                                     detail: Self.encode(["unsupported": error.message, "note": unsupported ?? ""]))
            reporter.notify(note)
            return nil
        } catch {
            try journal.finishIntent(id, at: clock(), ok: false, detail: "\(error)")
            reporter.notify("\(action) \(cluster) failed: \(error)")
            return "\(error)"
        }
    }

    func startEvaluation(_ evaluation: Int, gates: [String], group: inout ThrowingDiscardingTaskGroup<any Error>) {
        let chosen = gates.map { ($0, sources[$0]) }
        group.addTask { [weak self] in
            let results = await withTaskGroup(of: GateResult.self, returning: [GateResult].self) { inner in
                for (gate, source) in chosen {
                    inner.addTask {
                        guard let source else {
                            return GateResult(gate: gate, outcome: .error("no signal source for gate \(gate)"))
                        }
                        return GateResult(gate: gate, outcome: await source.evaluate())
                    }
                }
                var all: [GateResult] = []
                for await result in inner { all.append(result) }
                return all.sorted { $0.gate < $1.gate }
            }
            await self?.deliver(.gateResults(evaluation: evaluation, results: results))
        }
    }

    func deliver(_ input: EngineInput) {
        inbox.append(input)
    }

    // MARK: - Journal

    func record(_ event: EngineEvent, at now: Instant) throws {
        try journal.append(run: runID, at: now, event)
        if event.kind == .gateEvaluated, let gate = event.gate, let outcome = event.outcome {
            try journal.recordGateEvaluation(GateEvaluationRecord(run: runID, at: now, step: event.step ?? state.step,
                                                                  gate: gate, outcome: outcome))
        }
        if event.kind == .rollbackStarted {
            rollbackGate = event.gate
            rollbackAt = now
        }
        reporter.event(event, at: now)
    }

    func journalAppend(_ kind: String, _ message: String) throws {
        try journal.append(JournalEvent(run: runID, at: clock(), kind: kind,
                                        detail: Self.encode(["message": message])))
        reporter.note(kind: kind, message)
    }

    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// The detail of a `setWeights` result row: what the load balancer read back.
public struct WeightsResultDetail: Sendable, Hashable, Codable {
    public var percentToTarget: Double?
    public var servers: [String: Int]
    public var error: String?
}

/// The coordinator as a ServiceLifecycle `Service`: a `ServiceGroup` runs it and turns SIGINT
/// and SIGTERM into a graceful shutdown, which the loop notices within one sampling period.
public final class CoordinatorService: Service, Sendable {
    public let coordinator: Coordinator
    let preflight: PreflightResult?
    let resumeCheck: (@Sendable () async -> PreflightOutcome)?
    let result = Mutex<RunOutcome?>(nil)

    /// `preflight`/`resumeCheck`: as in `Coordinator.run(preflight:resumeCheck:)`.
    public init(coordinator: Coordinator, preflight: PreflightResult?,
                resumeCheck: (@Sendable () async -> PreflightOutcome)? = nil) {
        self.coordinator = coordinator
        self.preflight = preflight
        self.resumeCheck = resumeCheck
    }

    public func run() async throws {
        let outcome = try await coordinator.run(preflight: preflight, resumeCheck: resumeCheck)
        result.withLock { $0 = outcome }
    }

    /// The outcome once `run` has returned.
    public var outcome: RunOutcome? { result.withLock { $0 } }
}
