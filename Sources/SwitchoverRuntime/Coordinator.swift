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

/// The coordinator of one run: the loop that feeds the engine and performs what it decides.
///
/// Every `policy.sampling` one turn: a sample of the load balancer (journaled) fed to the engine
/// (the hard signal reacts on the sample itself), the live weights fed as a reading (the engine
/// compares them with the journal), the journal's commands, finished gate evaluations, then a
/// tick. The jobs around it are types of their own: `WriteAheadInterpreter` performs actions
/// (intent → apply → read back → result), `GateFanOut` evaluates external gates concurrently,
/// the lease (`CoordinatorLease`) is renewed every turn, and decisions (drift, stale commands,
/// outcomes) are the engine's.
///
/// An actor because gate evaluations finish on other tasks and hand their results in.
public actor Coordinator {
    public let engine: CutoverEngine
    public let runID: Int64
    let journal: any JournalStore
    /// Moves the weights and reads them back.
    let router: any WeightRouter
    let sampler: LoadBalancerSampler
    let interpreter: WriteAheadInterpreter
    let gates: GateFanOut
    let lease: (any CoordinatorLease)?
    let reporter: any Reporter
    let logger: Logger
    let goal: RunGoal
    /// Commands journaled before this instant were submitted while no coordinator held the
    /// journal (see `EngineInput.journaledCommand`): when this process took the lease.
    let commandsValidSince: Instant
    let clock: @Sendable () -> Instant
    /// The run's phase, step and share as hook calls and notifications say them; nil without hooks.
    let facts: RunFactsBox?

    var state: CutoverState
    /// Gate results handed in by evaluation tasks, fed at the next loop turn.
    var inbox: [EngineInput] = []
    var lastPrune: Instant
    var sampleFailureLogged = false
    /// Told once while the router's live weights cannot be read but the counters can.
    var weightsFailureLogged = false
    /// Told once while the drain waits for a fresh reading of the weights.
    var staleWeightsLogged = false
    var rollbackGate: String?
    var rollbackAt: Instant?
    /// The preflight's result, fed when the engine asks for it (see `run(preflight:resumeCheck:)`).
    var preflightAnswer: PreflightResult?
    /// The checks before resuming, once they finished (see `watchWhileChecking`).
    var resumeCheckResult: PreflightOutcome?
    /// Samples this process took successfully: `drained` is only believed after a fresh sample,
    /// never from a journaled state alone.
    var samplesTaken = 0
    /// What the loop observed and has not journaled yet: the engine's latest sample (see
    /// `unjournaledSample`), and whether the state moved since its last save by inputs that
    /// decided nothing (no action, same phase, step and intent). Both go in one write at
    /// observation durability at the end of the turn (`journalObservations`); any decision saves
    /// the state at once, with full durability.
    var stateUnjournaled = false
    /// The time of the last sample journaled (the journal's already, for a resumed run).
    var sampleJournaledAt: Instant?
    /// When the state was last journaled. A state that only observed is journaled at most once
    /// per `observedStateEvery` (its samples every turn): encoding the whole state is most of a
    /// turn's cost, more so with many services and instances, and a resumed engine samples again.
    var stateJournaledAt: Instant?
    let observedStateEvery: Duration = .seconds(1)
    /// The sampling period in force: the policy's, stretched (never past `interval`) when one
    /// sample takes more than half of it (several instances of thousands of servers), so that
    /// samples do not pile up and the loop keeps time. Said once per change, and journaled.
    var samplingPeriod: Duration?
    /// Consecutive samples that took more than half the period.
    var slowSamples = 0
    /// When the last `drainProgress` event was journaled.
    var lastDrainProgress: Instant?
    /// How often a draining run journals its progress (sessions, hold, ETA).
    let drainProgressEvery: Duration = .seconds(5)

    /// - Parameters:
    ///   - state: the state to start from (`.initial` for a fresh run, the journaled snapshot
    ///     on resume).
    ///   - unfinishedIntents: the journal's unfinished intents of this run (on resume).
    ///   - lease: the journal's lease this coordinator holds; its token fences every intent and
    ///     it is renewed every turn. Nil only in tests without one.
    ///   - crashAfterIntent: TEST ONLY, see `WriteAheadInterpreter`.
    public init(engine: CutoverEngine, runID: Int64, journal: any JournalStore,
                router: any WeightRouter, observer: any TrafficObserver, sources: [String: any SignalSource], state: CutoverState,
                unfinishedIntents: [JournalEvent], reporter: any Reporter, logger: Logger, goal: RunGoal = .promoted,
                lease: (any CoordinatorLease)? = nil, crashAfterIntent: Int? = nil,
                clock: @escaping @Sendable () -> Instant = Coordinator.wallClock, facts: RunFactsBox? = nil) {
        self.engine = engine
        self.runID = runID
        self.journal = journal
        self.router = router
        self.sampler = LoadBalancerSampler(router: router, observer: observer)
        self.interpreter = WriteAheadInterpreter(journal: journal, router: router, runID: runID,
                                                 fence: lease?.token, unfinishedIntents: unfinishedIntents,
                                                 crashAfterIntent: crashAfterIntent, leaseCheck: Self.check(lease),
                                                 logger: logger, clock: clock)
        self.gates = GateFanOut(sources: sources)
        self.lease = lease
        self.reporter = reporter
        self.logger = logger
        self.goal = goal
        self.clock = clock
        self.facts = facts
        self.state = state
        self.sampleJournaledAt = state.lastSample?.at
        let now = clock()
        // Commands journaled once this process took the lease (now, without one) are its own.
        self.commandsValidSince = min(lease.map { Instant($0.acquiredAt) } ?? now, now)
        self.lastPrune = now
    }

    /// The lease's renewal as the interpreter's check before every load-balancer call.
    static func check(_ lease: (any CoordinatorLease)?) -> (@Sendable () throws -> Void)? {
        guard let lease else { return nil }
        return { try lease.renew() }
    }

    /// The wall clock, in the journal's resolution.
    public static let wallClock: @Sendable () -> Instant = { Instant(Date()) }

    public var currentState: CutoverState { state }

    /// The lease's token every write of this coordinator carries (nil only in tests without one).
    var fence: Int64? { lease?.token }

    /// True once this coordinator asked the load balancer to change anything.
    public var touchedLoadBalancer: Bool { interpreter.touchedLoadBalancer }

    // MARK: - The loop

    /// Runs until the goal is reached, the run is rolled back or aborted, the lease is lost, or
    /// a graceful shutdown (SIGINT/SIGTERM through the ServiceGroup) stops it.
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
                    resumeCheck: (@Sendable () async -> PreflightOutcome)? = nil,
                    adopt: (@Sendable (CutoverState) throws -> CutoverState)? = nil) async throws -> RunOutcome {
        do {
            let outcome = try await loop(preflight: preflight, resumeCheck: resumeCheck, adopt: adopt)
            // Whichever way the loop ended, what it observed last is journaled (when the journal
            // takes it: a run stopped during an outage has nothing more to say there).
            do {
                try journalObservations(all: true)
            } catch let error as StoreError where error.code == .unavailable {
                logger.warning("the last observations could not be journaled", metadata: ["error": "\(error.context)"])
            }
            return outcome
        } catch let error as StoreError where error.code == .fenced {
            // Another coordinator took the journal: nothing more is journaled or moved by this one.
            reporter.finish(nil)
            return .leaseLost(reason: error.context)
        } catch {
            try? journalObservations(all: true)
            throw error
        }
    }

    /// `adopt`: an edited policy to go on under (see `PolicyRecord`), applied to the state once
    /// the resume checks passed, never before.
    func loop(preflight: PreflightResult?, resumeCheck: (@Sendable () async -> PreflightOutcome)?,
              adopt: (@Sendable (CutoverState) throws -> CutoverState)?) async throws -> RunOutcome {
        preflightAnswer = preflight
        try lease?.renew()
        try journalAppend("coordinatorStarted",
                          "coordinator pid \(getpid()) \(preflight == nil ? "resumed" : "started") run \(runID) at phase \(state.phase.rawValue), step \(state.step)"
                            + (lease.map { " (lease token \($0.token))" } ?? ""))
        try interpreter.closeInterrupted()
        return try await withThrowingDiscardingTaskGroup(returning: RunOutcome.self) { group in
            if preflight != nil {
                // The tick asks for the preflight (`runPreflight`), answered with `preflightAnswer`.
                try await feed(.tick, group: &group)
            } else {
                // An emergency during the checks (a rollback by the hard signal or a command, an
                // abort) shows as a new weight change or an aborted run; samples alone may move
                // a drain's phase, which is not one.
                let resumedPhase = state.phase, resumedIntent = state.lastIntent
                if let resumeCheck {
                    guard let checked = try await watchWhileChecking(resumeCheck, group: &group) else {
                        // Stopped by a signal before the checks were done: nothing is re-applied
                        // unchecked (the weights may have been changed by a person meanwhile).
                        try journalAppend("coordinatorStopped",
                                          "coordinator stopped by signal during the checks before resuming; nothing was re-applied; weights left as they are")
                        reporter.finish(nil)
                        group.cancelAll()
                        return .stopped
                    }
                    guard checked.result.passed || !untouched(since: resumedPhase, intent: resumedIntent) else {
                        group.cancelAll()
                        return .preflightFailed(checked.result.failures)
                    }
                    try journalTrust(checked)
                    preflightAnswer = checked.result
                    if let adopt, untouched(since: resumedPhase, intent: resumedIntent) {
                        // An edited policy is adopted only once the checks passed: a failed
                        // resume leaves the run under the policy it was journaled with.
                        state = try adopt(state)
                        try journal.saveState(run: runID, at: clock(), state, fence: lease?.token)
                    }
                }
                if untouched(since: resumedPhase, intent: resumedIntent) {
                    try await recoverFromLiveWeights(group: &group)
                }
            }

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
                do {
                    try lease?.renew()
                    try await turn(group: &group)
                } catch let error as StoreError where error.code == .unavailable {
                    // The journal cannot be written (etcd without quorum, or unreachable): hold
                    // still until it can, then go on from what it says.
                    if let stopped = try await holdThroughOutage(error, group: &group) {
                        reporter.finish(nil)
                        group.cancelAll()
                        return stopped
                    }
                    deadline = ContinuousClock.now
                }
                deadline = deadline.advanced(by: samplingPeriod ?? engine.policy.sampling)
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

    // MARK: - Journal outages

    /// While the journal cannot be written (`StoreError.Code.unavailable`: etcd without quorum,
    /// or out of reach, or the lease unsure), nothing is moved: every action is journaled before
    /// it is performed, and the journal takes nothing. Every `sampling` the load balancer is
    /// still sampled and the hard signal judged on a copy of the state: when it calls for a
    /// rollback, the person is told at once, and the rollback is made as soon as it can be
    /// journaled (a rollback nobody journaled would be invisible to a standby taking over, which
    /// could then move traffic forward again). When the journal answers, the run goes on as a
    /// resumed one: the state and unfinished intents as journaled, the live weights read, and
    /// `recover` (an unfinished weight change is finished exactly once; the step's bake
    /// restarts). Returns the outcome when a stop signal came meanwhile; a lost lease throws
    /// `.fenced` (the run ends `leaseLost`).
    func holdThroughOutage(_ error: StoreError, group: inout ThrowingDiscardingTaskGroup<any Error>) async throws -> RunOutcome? {
        let began = clock()
        let startedAt = ContinuousClock.now
        reporter.notify("journal unavailable: \(error.context); holding still: no weight moves until the journal can be written "
                        + "(weights left at \(format(state.percentToTarget))% to \(engine.to))")
        logger.warning("journal unavailable; holding", metadata: ["error": "\(error.context)"])
        var scratch = state
        var rollbackCalledFor: String?
        var lastError = error.context
        let period = engine.policy.sampling
        while true {
            if Task.isShuttingDownGracefully || Task.isCancelled {
                reporter.notify("stopped by signal while the journal was unavailable; nothing journaled since \(began.iso8601); weights left as they are")
                return .stopped
            }
            try? await Task.sleep(for: period)
            // The hard signal, judged on a copy: nothing it decides is performed unjournaled.
            if let sample = await sampleForEngine() {
                let (next, actions) = engine.next(scratch, .loadBalancerSample(sample), now: clock())
                scratch = next
                let wantsRollback = actions.contains {
                    if case .setWeights(_, _, _, .rollback) = $0 { true } else { false }
                }
                if wantsRollback, rollbackCalledFor == nil {
                    rollbackCalledFor = next.reason ?? "the hard signal"
                    reporter.notify("the hard signal calls for a rollback (\(rollbackCalledFor!)); it cannot be journaled while the journal is unavailable, "
                                    + "so it is made the moment the journal answers; `switchover rollback` can be asked meanwhile")
                }
            }
            do {
                try lease?.renew()
                guard let journaled = try journal.loadCutoverState(run: runID) else {
                    throw StoreError(.corrupt, "run \(runID)'s state vanished from the journal during the outage")
                }
                let unfinished = try journal.unfinishedIntents(run: runID)
                // The journal answers: go on from it, as a resumed coordinator would.
                state = journaled
                stateUnjournaled = false
                sampleJournaledAt = journaled.lastSample?.at
                interpreter.reload(unfinishedIntents: unfinished)
                try interpreter.closeInterrupted()
                let lasted = ContinuousClock.now - startedAt
                try journalAppend("journalUnavailable",
                                  "the journal could not be written from \(began.iso8601) for \(formatDuration(lasted)) (\(lastError)); "
                                    + "no weight was moved meanwhile; going on from the journal at phase \(state.phase.rawValue), step \(state.step)"
                                    + (rollbackCalledFor.map { "; the hard signal called for a rollback meanwhile (\($0))" } ?? ""))
                try await recoverFromLiveWeights(group: &group)
                if let why = rollbackCalledFor, [.shifting, .paused].contains(state.phase) {
                    // What the hard signal called for during the outage, now that it can be
                    // journaled: the window since the last journaled sample may dilute a burst
                    // the hard signal saw, so it is not judged again.
                    try await feed(.command(.rollback(reason: "the hard signal called for it while the journal was unavailable: \(why)"), id: 0),
                                   group: &group)
                }
                return nil
            } catch let again as StoreError where again.code == .unavailable {
                lastError = again.context
                continue
            }
        }
    }

    /// The engine's `recover` on a fresh reading of the live weights, saved and performed: how a
    /// resumed run, and one that waited out a journal outage, puts the world back where the
    /// journal says it is.
    func recoverFromLiveWeights(group: inout ThrowingDiscardingTaskGroup<any Error>) async throws {
        let now = clock()
        let live = try? await router.currentWeights()
        let reading = live.map { LoadBalancerSampler.reading($0, router: router, at: now) }
        let (recovered, actions) = engine.recover(state, live: reading, now: now)
        try saveAndPerform(recovered, actions, now: now, group: &group)
        try await performPending(actions, group: &group)
    }

    /// True when nothing but samples changed the run since it stood at `phase` with `intent`.
    func untouched(since phase: Phase, intent: Int) -> Bool {
        state.lastIntent == intent && (state.phase != .aborted || phase == .aborted)
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
            try lease?.renew()
            if let sample = await sampleForEngine() {
                samplesTaken += 1
                try await feed(.loadBalancerSample(sample), group: &group)
            }
            try await feedJournaledCommands(only: { if case .rollback = $0 { true } else if case .abort = $0 { true } else { false } },
                                            group: &group)
            try journalObservations()
            if resumeCheckResult != nil { break }
            try? await Task.sleep(for: period)
        }
        return resumeCheckResult
    }

    func checked(_ outcome: PreflightOutcome) {
        resumeCheckResult = outcome
    }

    /// Stretches the sampling period when three samples in a row took more than half of it:
    /// to twice what the last one took (in 50 ms), at most `interval` (gates are evaluated on
    /// sampling ticks) and half the engine's freshness. The hard signal's reaction time grows with it, and the person is told why.
    func keepTime(sampleTook took: Duration) throws {
        let period = samplingPeriod ?? engine.policy.sampling
        guard took * 2 > period else { slowSamples = 0; return }
        slowSamples += 1
        // At most the interval (gates are judged on sampling ticks) and half the freshness a
        // guard asks of a reading (a drain is declared, a decommission decided, on a sample
        // at most `freshness` old).
        let ceiling = min(engine.policy.interval, engine.freshness / 2)
        guard slowSamples >= 3, period < ceiling else { return }
        let wanted = Duration.milliseconds(((took * 2).milliseconds + 49) / 50 * 50)
        let stretched = min(max(wanted, period), ceiling)
        guard stretched > period else { return }
        samplingPeriod = stretched
        slowSamples = 0
        let why = "sampling stretched from \(formatDuration(period)) to \(formatDuration(stretched)): one sample of the load balancer "
            + "(\(router.address)) took \(formatDuration(took)), more than half the period, three times in a row"
            + (stretched == ceiling ? " (at most \(formatDuration(ceiling)): the gates' interval, and half the freshness a drain is decided on)" : "")
            + "; the hard signal reacts within \(formatDuration(stretched)) now"
        reporter.notify(why)
        try journalAppend("samplingStretched", why)
    }

    /// A sample for the engine outside the main turn (a journal outage, the checks before
    /// resuming), or nil: while green is judged, the counters alone when only the router's live
    /// weights could not be read (as in `turn`).
    func sampleForEngine() async -> LoadBalancerSample? {
        do {
            let read = try await sampler.sampleWithWeights(at: clock())
            // The drain's fresh-reading rule holds here too (`staleWeightsForDrain`).
            return staleWeightsForDrain(read.live) == nil ? read.sample : nil
        } catch let unread as LoadBalancerSampler.WeightsUnread where [.shifting, .paused].contains(state.phase) {
            return unread.sample
        } catch {
            return nil
        }
    }

    /// Why the sample must not reach the drain, or nil: in `draining` or `drained`, blue's
    /// weight must be a fresh reading, and a router that paces its reads (`readingMaxAge`) may
    /// serve an older one while its API fails.
    func staleWeightsForDrain(_ live: LiveWeights) -> String? {
        guard [.draining, .drained].contains(state.phase), let maxAge = router.readingMaxAge else { return nil }
        let age = Duration.milliseconds(Int64((Date().timeIntervalSince(live.readAt) * 1000).rounded()))
        let allowed = engine.freshness + maxAge
        guard age > allowed else { return nil }
        return "the live weights were last read \(formatDuration(age)) ago (at most \(formatDuration(allowed)) for the drain): "
            + "blue's drain waits for a fresh reading"
    }

    /// One loop turn: sample and live weights, commands, gate results, tick.
    func turn(group: inout ThrowingDiscardingTaskGroup<any Error>) async throws {
        let now = clock()
        var sample: LoadBalancerSample?
        var live: LiveWeights?
        var took: Duration?
        do {
            let started = ContinuousClock.now
            let read = try await sampler.sampleWithWeights(at: now)
            (sample, live) = (read.sample, read.live)
            took = ContinuousClock.now - started
        } catch is CancellationError {
            return
        } catch let unread as LoadBalancerSampler.WeightsUnread where [.shifting, .paused].contains(state.phase) {
            // The router's API failed but the counters came (from Prometheus): while green is
            // judged, the hard signal and the gates get them, with the weights last read. No
            // live-weights reading is fed, so nothing is decided on weights not read. In the
            // drain, whose verdict rests on blue's live weight, such a sample is not used.
            sample = unread.sample
            if !weightsFailureLogged {
                reporter.notify("could not read the live weights (\(unread.cause)); the counters still reach the hard signal and the gates")
                try journalAppend("sampleFailed", "live weights not read: \(unread.cause); counters sampled")
                weightsFailureLogged = true
            }
        } catch {
            // A missed sample is not a sample of zeros: the engine simply gets none this turn
            // (the hard signal and gates judge the next window), and the person is told once.
            if !sampleFailureLogged {
                reporter.notify("could not sample the load balancer: \(error)")
                try journalAppend("sampleFailed", "\(error)")
                sampleFailureLogged = true
            }
        }
        // After the catch: a journal error while saying so is not a failed sample.
        if let took { try keepTime(sampleTook: took) }
        if let read = live, let why = staleWeightsForDrain(read) {
            sample = nil
            live = nil
            if !staleWeightsLogged {
                reporter.notify(why)
                try journalAppend("sampleFailed", why)
                staleWeightsLogged = true
            }
        } else if live != nil, staleWeightsLogged {
            staleWeightsLogged = false
        }
        if let sample {
            if sampleFailureLogged {
                reporter.notify("load balancer answering again")
                sampleFailureLogged = false
            }
            samplesTaken += 1
            try await feed(.loadBalancerSample(sample), group: &group)
        }
        if live != nil, weightsFailureLogged {
            reporter.notify("live weights read again")
            weightsFailureLogged = false
        }
        if let live {
            try await feed(.liveWeights(LoadBalancerSampler.reading(live, router: router, at: now)), group: &group)
        }
        try await feedJournaledCommands(only: { _ in true }, group: &group)
        let results = inbox
        inbox = []
        for input in results { try await feed(input, group: &group) }
        try await feed(.tick, group: &group)
        try journalObservations()
        let at = clock()
        if at - lastPrune >= .seconds(60) {
            lastPrune = at
            let pruned = try journal.pruneSamples(now: at, retention: .standard)
            if pruned > 0 { logger.debug("pruned samples", metadata: ["rows": "\(pruned)"]) }
        }
    }

    /// Feeds the journal's pending commands that `only` accepts to the engine, which refuses the
    /// stale ones (journaled before this coordinator took the lease) and answers every other.
    func feedJournaledCommands(only accept: (ManualCommand) -> Bool,
                               group: inout ThrowingDiscardingTaskGroup<any Error>) async throws {
        for command in try journal.pendingCommands() {
            guard let manual = CommandCodec.decode(name: command.command, arguments: command.arguments) else {
                try journal.acknowledgeCommand(command.id, at: clock(), accepted: false,
                                               outcome: "unknown command '\(command.command)'", fence: fence)
                continue
            }
            guard accept(manual) else { continue }
            try await feed(.journaledCommand(manual, id: command.id, issuedAt: command.issuedAt,
                                             coordinatorSince: commandsValidSince), group: &group)
            // The engine acknowledges every command it is given an id for; make sure of it.
            if let record = try journal.command(command.id), record.acknowledgedAt == nil {
                try journal.acknowledgeCommand(command.id, at: clock(), accepted: false,
                                               outcome: "\(manual.name) had no effect in phase \(state.phase.rawValue)", fence: fence)
            }
        }
    }

    func outcome() -> RunOutcome? {
        state.outcome(goal: goal, sampledThisProcess: samplesTaken > 0, drainTimeout: engine.policy.drain.timeout,
                      rollbackGate: rollbackGate, rollbackAt: rollbackAt)
    }

    // MARK: - Inputs and actions

    /// One input to the engine: journal the new state, then perform the actions. A state that
    /// only observed (no action, same phase, step and intent) is journaled with a turn's sample
    /// instead, at most once a second (`journalObservations`): at 250 ms sampling every input
    /// saved the whole state with an fsync before, three per turn.
    func feed(_ input: EngineInput, group: inout ThrowingDiscardingTaskGroup<any Error>) async throws {
        let now = clock()
        let (next, actions) = engine.next(state, input, now: now)
        if actions.isEmpty, next.phase == state.phase, next.step == state.step, next.lastIntent == state.lastIntent {
            if next != state {
                state = next
                stateUnjournaled = true
            }
            reporter.progress(ProgressSnapshot(state: state, policy: engine.policy, to: engine.to, now: now))
            try journalDrainProgress(now: now)
            return
        }
        try saveAndPerform(next, actions, now: now, group: &group)
        try await performPending(actions, group: &group)
    }

    /// The engine's latest sample when it is not journaled yet: the one it judged, summed per
    /// instance onto the previous one (`LoadBalancerSample.rebased`), so the journal's series do
    /// not dip when an instance restarts or does not answer.
    var unjournaledSample: LoadBalancerSample? {
        guard let sample = state.lastSample, sample.at != sampleJournaledAt else { return nil }
        return sample
    }

    /// Journals what the turn observed and did not save yet (see `unjournaledSample`), in one
    /// write at observation durability: the sample always, the state once `observedStateEvery`
    /// has passed since it was last journaled (or `all`, when the loop ends).
    func journalObservations(all: Bool = false) throws {
        let now = clock()
        let stateDue = stateUnjournaled && (all || stateJournaledAt.map { now - $0 >= observedStateEvery } ?? true)
        let sample = unjournaledSample
        guard sample != nil || stateDue else { return }
        try journal.recordObservation(run: runID, at: now, sample: sample, state: stateDue ? state : nil, fence: fence)
        if let sample { sampleJournaledAt = sample.at }
        if stateDue {
            stateUnjournaled = false
            stateJournaledAt = now
        }
    }

    /// Adopts `next`, saves it, and performs every action that needs no awaiting (records,
    /// notifications, acknowledgements, starting gate evaluations). Weight changes and drain
    /// changes are done by `performPending`, after the state that expects them is journaled.
    func saveAndPerform(_ next: CutoverState, _ actions: [Action], now: Instant,
                        group: inout ThrowingDiscardingTaskGroup<any Error>) throws {
        state = next
        // Before the events are told: a notification of this decision carries its phase and share.
        facts?.update(phase: next.phase, step: next.step, percent: next.percentToTarget)
        if let sample = unjournaledSample {
            // The sample a decision may rest on lands before it, and the decision's fsync covers it.
            try journal.recordObservation(run: runID, at: now, sample: sample, state: nil, fence: fence)
            sampleJournaledAt = sample.at
        }
        try journal.saveState(run: runID, at: now, state, fence: fence)
        stateUnjournaled = false
        stateJournaledAt = now
        for action in actions {
            switch action {
            case .record(let event):
                try record(event, at: now)
            case .notify(let message):
                reporter.notify(message)
            case .acknowledge(let id, let accepted, let detail):
                try journal.acknowledgeCommand(id, at: now, accepted: accepted, outcome: detail, fence: fence)
            case .evaluateGates(let evaluation, let names):
                gates.start(evaluation: evaluation, gates: names, in: &group) { [weak self] input in
                    await self?.deliver(input)
                }
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
            // No lease check here: every action's intent is a fenced write, made before the load
            // balancer is asked (see `WriteAheadInterpreter`).
            switch action {
            case .setWeights(let intent, let percent, let step, let purpose):
                let result = try await interpreter.setWeights(intent: intent, percent: percent, step: step, purpose: purpose,
                                                              expecting: state)
                try await feed(.weightsApplied(intent: intent, result: result), group: &group)
            case .setDrain(let cluster):
                switch try await interpreter.drain(cluster) {
                case .done:
                    break
                case .unsupported(let why):
                    // No drain state (Envoy): FROM's verified weight 0 is what keeps new requests
                    // away. Nothing was asked of the load balancer, so no intent: the journal says so.
                    try journalAppend("drainStateUnsupported",
                                      "\(cluster) not put in drain: \(why); its verified weight 0 already sends it no new requests")
                case .refused(let why):
                    // Set again once a reading shows the journaled weights (see the engine's drift rules).
                    reporter.notify("not putting \(cluster) in drain: \(why)")
                case .failed(let why):
                    reporter.notify("setDrain \(cluster) failed: \(why)")
                }
            case .setReady(let cluster):
                let outcome = try await interpreter.ready(cluster)
                if case .failed(let why) = outcome {
                    reporter.notify("setReady \(cluster) failed: \(why)")
                    // FROM still in drain takes no new requests whatever its weight: the rollback
                    // is not done, so its weights intent is reported as not verified and the
                    // engine sends the whole rollback (setReady first) again.
                    if let pending = state.pendingWeights, pending.purpose == .rollback {
                        try await feed(.weightsApplied(intent: pending.intent,
                                                       result: .mismatch(detail: "setReady \(cluster) failed: \(why)")),
                                       group: &group)
                    }
                }
            case .forceCloseSessions(let cluster):
                if case .failed(let why) = try await interpreter.closeSessions(cluster) {
                    reporter.notify("shutting down \(cluster)'s sessions failed: \(why)")
                }
            case .runPreflight:
                // Preflight ran before the run was journaled (a failed one changes nothing), or
                // as the checks before resuming a run that had not got past it.
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

    func deliver(_ input: EngineInput) {
        inbox.append(input)
    }

    // MARK: - Journal

    func record(_ event: EngineEvent, at now: Instant) throws {
        try journal.append(run: runID, at: now, event, fence: fence)
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
                                        detail: WriteAheadInterpreter.encode(["message": message])), fence: fence)
        reporter.note(kind: kind, message)
    }

    /// The trust report as evidence (`trustVerified`, which `switchover report` shows).
    func journalTrust(_ outcome: PreflightOutcome) throws {
        guard let json = outcome.trustReportJSON else { return }
        try journal.append(JournalEvent(run: runID, at: clock(), kind: Self.trustEventKind, detail: json), fence: fence)
    }

    /// The journal kind of the trust evidence (the report reads it under this name).
    public static let trustEventKind = "trustVerified"
}

/// The coordinator as a ServiceLifecycle `Service`: a `ServiceGroup` runs it and turns SIGINT
/// and SIGTERM into a graceful shutdown, which the loop notices within one sampling period.
public final class CoordinatorService: Service, Sendable {
    public let coordinator: Coordinator
    let preflight: PreflightResult?
    let resumeCheck: (@Sendable () async -> PreflightOutcome)?
    let adopt: (@Sendable (CutoverState) throws -> CutoverState)?
    let result = Mutex<RunOutcome?>(nil)

    /// `preflight`, `resumeCheck`, `adopt`: as in `Coordinator.run(preflight:resumeCheck:adopt:)`.
    public init(coordinator: Coordinator, preflight: PreflightResult?,
                resumeCheck: (@Sendable () async -> PreflightOutcome)? = nil,
                adopt: (@Sendable (CutoverState) throws -> CutoverState)? = nil) {
        self.coordinator = coordinator
        self.preflight = preflight
        self.resumeCheck = resumeCheck
        self.adopt = adopt
    }

    public func run() async throws {
        let outcome = try await coordinator.run(preflight: preflight, resumeCheck: resumeCheck, adopt: adopt)
        result.withLock { $0 = outcome }
    }

    /// The outcome once `run` has returned.
    public var outcome: RunOutcome? { result.withLock { $0 } }
}
