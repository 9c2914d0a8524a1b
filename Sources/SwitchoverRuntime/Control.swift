import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverSignals
import SwitchoverStore

/// What a control command (`pause`, `resume`, `promote`, `abort`, `rollback`, `decommission`)
/// came to, for the command line to print: exit 0 when accepted, 1 otherwise.
public struct ControlAnswer: Sendable {
    public var command: String
    public var accepted: Bool
    public var detail: String
    /// The journal's command id, when the command was journaled.
    public var id: Int64?
    /// `decommission`: the run's phase after it and the evidence it was judged on.
    public var phase: Phase?
    public var evidence: [String: String]?
    /// Said on stderr besides the answer (the journal is behind, ...).
    public var warnings: [String] = []

    public init(command: String, accepted: Bool, detail: String, id: Int64? = nil) {
        self.command = command
        self.accepted = accepted
        self.detail = detail
        self.id = id
    }
}

/// The control commands: a command is journaled and the running coordinator's answer awaited
/// (withdrawn when none comes in time); with no coordinator running, `rollback` and
/// `decommission` take the lease and carry themselves out through the engine, as the
/// coordinator would.
public enum Control {
    /// How long a control command waits for the coordinator's acknowledgement. The coordinator
    /// polls every sampling period (250 ms by default), so a few seconds is plenty.
    public static let acknowledgementTimeout: Duration = .seconds(5)

    /// What a control command reports when the coordinator never answered and it was withdrawn.
    public static let withdrawnOutcome = "no answer from the coordinator within \(acknowledgementTimeout.components.seconds) s; withdrawn"

    /// `pause`, `resume`, `promote`, `abort`: asks the running coordinator. Refused, with nothing
    /// journaled, when no run or no coordinator is there (nothing fires later by surprise).
    /// Needs only the journal's location: no configuration is read.
    public static func submit(_ command: ManualCommand, state: StateLocation) async throws -> ControlAnswer {
        guard let journal = try state.existingJournal(), try journal.latestRun() != nil else {
            return ControlAnswer(command: command.name, accepted: false, detail: "no run journaled at \(state)")
        }
        guard state.coordinator != nil else {
            return ControlAnswer(command: command.name, accepted: false,
                                 detail: "no coordinator is running for \(state); start one with `switchover run`")
        }
        let record = try await ask(command, journal: journal)
        return ControlAnswer(command: command.name, accepted: record.accepted == true, detail: record.outcome ?? "", id: record.id)
    }

    /// Journals `command` and waits for the coordinator's answer. When the wait runs out, the
    /// command is withdrawn with one conditional update, so a command reported as refused can
    /// never be carried out later by a coordinator that was merely slow; if the coordinator
    /// answered between the last look and the withdrawal, its answer is the one returned.
    static func ask(_ command: ManualCommand, journal: any JournalStore) async throws -> CommandRecord {
        let (name, arguments) = CommandCodec.encode(command)
        let id = try journal.submitCommand(name, arguments: arguments, at: Coordinator.wallClock())
        let deadline = ContinuousClock.now + acknowledgementTimeout
        while ContinuousClock.now < deadline {
            if let record = try journal.command(id), record.acknowledgedAt != nil { return record }
            try await Task.sleep(for: .milliseconds(50))
        }
        _ = try journal.withdrawCommand(id, at: Coordinator.wallClock(), outcome: withdrawnOutcome)
        guard let record = try journal.command(id), record.acknowledgedAt != nil else {
            throw StoreError(.corrupt, "command \(id) vanished from the journal while it was being withdrawn")
        }
        return record
    }

    /// The journaled run's policy and the driver for its load balancer, or the answer when the
    /// driver cannot be made.
    enum Reached {
        case reached(Policy, LoadBalancerPair)
        case refused(ControlAnswer)
    }

    static func loadBalancer(of run: RunRecord, context: RuntimeContext, command: ManualCommand) throws -> Reached {
        let pair = try context.journaledPair(from: run.from, to: run.to, policy: run.policy)
        do {
            return .reached(pair.policy, try context.loadBalancer(policy: pair.policy, from: pair.from, to: pair.to))
        } catch {
            return .refused(ControlAnswer(command: command.name, accepted: false, detail: "cannot reach the load balancer: \(error)"))
        }
    }

    // MARK: - rollback

    /// All traffic back to FROM now. With a coordinator running, asks it. With none, this process
    /// takes the lease (no coordinator starts meanwhile, and a deposed one is fenced), journals
    /// the command and carries it out through the driver as the coordinator would: intent, apply,
    /// read-back, result, the new state; it first finishes an unfinished weight change. Accepted
    /// only when all traffic reads back on FROM. When the journal cannot be written (a full
    /// disk), it rolls back anyway without it and says the journal is behind.
    public static func rollback(reason: String?, context: RuntimeContext) async throws -> ControlAnswer {
        let command = ManualCommand.rollback(reason: reason)
        let opened: (any JournalStore)?
        do {
            opened = try context.state.existingJournal()
        } catch let error as StoreError {
            // The journal is there but cannot be opened for writing (a read-only filesystem, a
            // full disk): the emergency exit must not depend on it.
            return try await rollBackFromUnopenedJournal(command, openError: error, context: context)
        }
        guard let journal = opened, let (run, state) = try StateLocation.latestRun(in: journal) else {
            return ControlAnswer(command: command.name, accepted: false, detail: "no run journaled at \(context.state)")
        }
        if context.state.coordinator != nil { return try await submit(command, state: context.state) }
        let pair: (policy: Policy, loadBalancer: LoadBalancerPair)
        switch try loadBalancer(of: run, context: context, command: command) {
        case .reached(let policy, let loadBalancer): pair = (policy, loadBalancer)
        case .refused(let answer): return answer
        }
        let loadBalancer = pair.loadBalancer
        let lease: any CoordinatorLease
        do {
            lease = try context.state.takeLease(journal: journal)
        } catch let error as StoreError where error.code == .lockHeld {
            // A coordinator started between the two looks: ask it.
            return try await submit(command, state: context.state)
        } catch let error as StoreError {
            // The lease's token cannot be journaled: hold the lock alone and roll back anyway.
            let lock: CoordinatorLock
            do {
                lock = try context.state.takeLockWithoutToken()
            } catch let error as StoreError where error.code == .lockHeld {
                return try await submit(command, state: context.state)
            }
            defer { lock.release() }
            return await rollBackWithoutJournal(command, journalError: error, run: run, state: state, loadBalancer: loadBalancer,
                                                policy: pair.policy, context: context)
        }
        defer { lease.release() }
        let id: Int64
        let final: CutoverState
        var hooks: HookWiring?
        do {
            let (name, arguments) = CommandCodec.encode(command)
            id = try journal.submitCommand(name, arguments: arguments, at: Coordinator.wallClock())
            let reporter = LogReporter(logger: context.logger)
            hooks = HookWiring.offline(policy: pair.policy, run: run, state: state, journal: journal, fence: lease.token,
                                       reporter: reporter, logger: context.logger)
            let coordinator = Coordinator(engine: CutoverEngine(policy: pair.policy, from: run.from, to: run.to), runID: run.id,
                                          journal: journal, router: loadBalancer.router, observer: loadBalancer.observer, sources: [:], state: state,
                                          unfinishedIntents: try journal.unfinishedIntents(run: run.id),
                                          reporter: hooks?.reporter(wrapping: reporter) ?? reporter, logger: context.logger, lease: lease,
                                          facts: hooks?.facts)
            hooks?.notifier?.start()
            final = try await coordinator.runOffline(command, id: id)
        } catch let error as StoreError where error.code != .fenced {
            // The emergency exit first; the receivers get what was told after it.
            let answer = await rollBackWithoutJournal(command, journalError: error, run: run, state: state, loadBalancer: loadBalancer,
                                                      policy: pair.policy, context: context)
            await hooks?.notifier?.finish(grace: HookWiring.finishGrace)
            return answer
        } catch {
            await hooks?.notifier?.finish(grace: HookWiring.finishGrace)
            throw error
        }
        await hooks?.notifier?.finish(grace: HookWiring.finishGrace)
        guard let record = try journal.command(id) else {
            return ControlAnswer(command: command.name, accepted: false, detail: "the command was not journaled", id: id)
        }
        // Accepted means all traffic is back on FROM, verified: finishing an unfinished rollback
        // first (see `runOffline`) can leave the command itself refused as "already rolled
        // back", which is what was asked for. A run already rolled back before is refused.
        let wasVerified = state.phase == .rolledBack && state.rollbackVerified
        if final.phase == .rolledBack, final.rollbackVerified, !wasVerified {
            let how = record.accepted == true ? "rolled back by this process" : "the unfinished rollback was finished by this process"
            return ControlAnswer(command: command.name, accepted: true,
                                 detail: "no coordinator was running; \(how): all traffic on \(run.from), read back from the load balancer",
                                 id: id)
        }
        guard record.accepted == true else {
            return ControlAnswer(command: command.name, accepted: false, detail: record.outcome ?? "refused", id: id)
        }
        return ControlAnswer(command: command.name, accepted: false,
                             detail: "rollback started but not verified: \(final.reason ?? "read-back failed"); run `switchover rollback` again",
                             id: id)
    }

    /// The rollback when the journal cannot even be opened for writing: what run and state it
    /// holds is read without writing (`StateLocation.emergencyJournal`), the lock is taken when it
    /// can be (a read-only filesystem still allows locking an existing lock file; without one it
    /// goes on and says so), then as `rollBackWithoutJournal`.
    static func rollBackFromUnopenedJournal(_ command: ManualCommand, openError: StoreError,
                                            context: RuntimeContext) async throws -> ControlAnswer {
        let reader: (journal: any JournalStore, behind: String?)
        do {
            reader = try context.state.emergencyJournal()
        } catch {
            return ControlAnswer(command: command.name, accepted: false,
                                 detail: "the journal at \(context.state) cannot be opened (\(openError.context)) nor read (\(error)); "
                                    + "nothing was changed; without it the run's clusters are unknown")
        }
        guard let (run, state) = try StateLocation.latestRun(in: reader.journal) else {
            return ControlAnswer(command: command.name, accepted: false, detail: "no run journaled at \(context.state)")
        }
        var warnings: [String] = reader.behind.map { ["the journal was \($0)"] } ?? []
        var lock: CoordinatorLock?
        do {
            lock = try context.state.takeLockWithoutToken()
        } catch let error as StoreError where error.code == .lockHeld {
            return ControlAnswer(command: command.name, accepted: false,
                                 detail: "\(error.context); it cannot write the journal either (\(openError.context)); "
                                    + "stop it, then `switchover rollback` again; nothing was changed")
        } catch {
            warnings.append("rolling back without the coordinator lock (\(error)): start no coordinator until this is done")
        }
        defer { lock?.release() }
        let pair: (policy: Policy, loadBalancer: LoadBalancerPair)
        switch try loadBalancer(of: run, context: context, command: command) {
        case .reached(let policy, let loadBalancer): pair = (policy, loadBalancer)
        case .refused(let answer): return answer
        }
        let loadBalancer = pair.loadBalancer
        var answer = await rollBackWithoutJournal(command, journalError: openError, run: run, state: state,
                                                  loadBalancer: loadBalancer, policy: pair.policy, context: context)
        answer.warnings = warnings + answer.warnings
        return answer
    }

    /// The rollback when the journal cannot be written: the engine's refusals (never after
    /// decommission, nothing to do before any traffic moved or once verified), then
    /// `UnjournaledRollback`. Accepted when all traffic reads back on FROM; either way the answer
    /// says the journal is behind.
    static func rollBackWithoutJournal(_ command: ManualCommand, journalError: StoreError, run: RunRecord, state: CutoverState,
                                       loadBalancer: LoadBalancerPair, policy: Policy, context: RuntimeContext) async -> ControlAnswer {
        let behind = "the journal at \(context.state) could not be written (\(journalError.context)), so it is behind: "
            + "it still says phase \(state.phase.rawValue), step \(state.step), \(format(state.percentToTarget))% to \(run.to); "
            + "once it can be written, `switchover rollback` again records the rollback"
        // The engine decides whether a rollback may happen, as with the journal; only what it
        // would do is done here without it.
        let engine = CutoverEngine(policy: policy, from: run.from, to: run.to)
        let (_, decided) = engine.next(state, .command(command, id: 0), now: Coordinator.wallClock())
        for case .acknowledge(_, false, let why) in decided {
            let verified = state.phase == .rolledBack && state.rollbackVerified
            return ControlAnswer(command: command.name, accepted: false,
                                 detail: verified ? why : "\(why); not rolled back; \(behind)")
        }
        switch await UnjournaledRollback.perform(router: loadBalancer.router, fromWasDrained: state.drain != nil) {
        case .success(let live):
            let servers = live.assignment.all.map { "\($0.server)=\($0.weight)" }.joined(separator: " ")
            var answer = ControlAnswer(command: command.name, accepted: true,
                                       detail: "no coordinator was running; rolled back by this process WITHOUT the journal: "
                                        + "all traffic on \(run.from), read back from the load balancer (\(servers)); \(behind)")
            answer.warnings = [behind]
            return answer
        case .failure(let error):
            return ControlAnswer(command: command.name, accepted: false,
                                 detail: "rollback through the load balancer failed: \(error); \(behind)")
        }
    }

    // MARK: - decommission

    /// Records that FROM may be torn down. The engine decides (the same rule with or without a
    /// coordinator): accepted when the run is `drained` on a fresh reading; refused otherwise,
    /// with the evidence; `force` with a reason records it anyway, with both. With a coordinator
    /// running it goes through the journal like `pause`; with none, this process takes the
    /// lease, reads the load balancer itself, and carries it out.
    public static func decommission(from: String, force: Bool, reason: String?, context: RuntimeContext) async throws -> ControlAnswer {
        let command = ManualCommand.decommission(force: force, reason: reason)
        guard let journal = try context.state.existingJournal(), let (run, _) = try StateLocation.latestRun(in: journal) else {
            return ControlAnswer(command: command.name, accepted: false, detail: "no run journaled at \(context.state)")
        }
        guard run.from == from else {
            return ControlAnswer(command: command.name, accepted: false,
                                 detail: "the latest run (\(run.id)) moved traffic from \(run.from) to \(run.to), not from \(from)")
        }
        let policy = context.configuration.policy(named: run.policy)
        func submitted() async throws -> ControlAnswer {
            let record = try await ask(command, journal: journal)
            let state = try StateLocation.latestRun(in: journal)?.1 ?? .initial
            return answer(record, state: state, policy: policy, from: from, offline: false)
        }
        if context.state.coordinator != nil { return try await submitted() }
        let lease: any CoordinatorLease
        do {
            lease = try context.state.takeLease(journal: journal)
        } catch let error as StoreError where error.code == .lockHeld {
            return try await submitted()
        }
        defer { lease.release() }
        let pair: (policy: Policy, loadBalancer: LoadBalancerPair)
        switch try loadBalancer(of: run, context: context, command: command) {
        case .reached(let policy, let loadBalancer): pair = (policy, loadBalancer)
        case .refused(let answer): return answer
        }
        let loadBalancer = pair.loadBalancer
        let (name, arguments) = CommandCodec.encode(command)
        let id = try journal.submitCommand(name, arguments: arguments, at: Coordinator.wallClock())
        guard let (_, state) = try StateLocation.latestRun(in: journal) else {
            return ControlAnswer(command: command.name, accepted: false, detail: "no run journaled", id: id)
        }
        let reporter = LogReporter(logger: context.logger)
        let hooks = HookWiring.offline(policy: pair.policy, run: run, state: state, journal: journal, fence: lease.token,
                                       reporter: reporter, logger: context.logger)
        let coordinator = Coordinator(engine: CutoverEngine(policy: pair.policy, from: run.from, to: run.to), runID: run.id,
                                      journal: journal, router: loadBalancer.router, observer: loadBalancer.observer, sources: [:], state: state,
                                      unfinishedIntents: try journal.unfinishedIntents(run: run.id),
                                      reporter: hooks?.reporter(wrapping: reporter) ?? reporter, logger: context.logger, lease: lease,
                                      facts: hooks?.facts)
        hooks?.notifier?.start()
        let final: CutoverState
        do {
            final = try await coordinator.runOffline(command, id: id)
        } catch {
            await hooks?.notifier?.finish(grace: HookWiring.finishGrace)
            throw error
        }
        await hooks?.notifier?.finish(grace: HookWiring.finishGrace)
        guard let record = try journal.command(id) else {
            return ControlAnswer(command: command.name, accepted: false, detail: "the command was not journaled", id: id)
        }
        return answer(record, state: final, policy: pair.policy, from: from, offline: true)
    }

    static func answer(_ record: CommandRecord, state: CutoverState, policy: Policy?, from: String, offline: Bool) -> ControlAnswer {
        let accepted = record.accepted == true
        let detail = (record.outcome ?? (accepted ? "accepted" : "refused"))
            + (accepted && offline ? " (no coordinator was running; recorded by this process)" : "")
        var answer = ControlAnswer(command: "decommission", accepted: accepted, detail: detail, id: record.id)
        answer.phase = state.phase
        answer.evidence = policy.map { CutoverEngine(policy: $0, from: from, to: "").drainEvidence(state, now: Coordinator.wallClock()) } ?? [:]
        return answer
    }
}
