import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverStore

/// What `switchover run` finds in the journal before it starts, and what it will do about it.
public enum RunPlan: Sendable {
    /// No run, or the latest is over: start a new one. The live weights must be 0% to TO.
    case fresh
    /// The latest run is this pair under this policy and not over (a rollback not yet verified
    /// included): resume from its state.
    case resume(run: RunRecord, state: CutoverState)
    /// The latest run reached the goal already; nothing to do.
    case alreadyDone(run: RunRecord, state: CutoverState)
    /// The latest run is another pair or policy and not over; refuse, naming it.
    case conflict(String)
}

public enum RunSetup {
    /// Reads the journal's latest run and decides between starting, resuming and refusing.
    public static func plan(journal: any JournalStore, from: String, to: String, policy: String,
                            goal: RunGoal = .promoted) throws -> RunPlan {
        guard let (latest, state) = try StateLocation.latestRun(in: journal) else { return .fresh }
        // A rollback not yet verified is not over: traffic may still be on TO, or FROM still in
        // drain. `run` resumes it (and finishes it) rather than start a new run on top of it.
        let unfinishedRollback = state.phase == .rolledBack && !state.rollbackVerified
        if state.phase.isFinal && !unfinishedRollback { return .fresh }
        let same = latest.from == from && latest.to == to && latest.policy == policy
        if !same {
            return .conflict("run \(latest.id) from \(latest.from) to \(latest.to) under policy \(latest.policy) is not over (phase \(state.phase.rawValue)); finish it, or `switchover abort`/`rollback` it, before starting \(from) → \(to) under \(policy)")
        }
        switch state.phase {
        case .promoted, .draining, .drained:
            return goal == .promoted ? .alreadyDone(run: latest, state: state) : .resume(run: latest, state: state)
        default:
            return .resume(run: latest, state: state)
        }
    }

    /// The shares to TO a resumed run's live weights may be at: the verified one, and the one
    /// being applied when the coordinator stopped (it may or may not have reached the load
    /// balancer).
    public static func expectedPercentages(resuming state: CutoverState) -> [Double] {
        var expected = [state.percentToTarget]
        if let pending = state.pendingWeights { expected.append(pending.percentToTarget) }
        return expected
    }
}

/// What `switchover drain FROM` finds in the journal: a run of its own to track, or one to go on
/// with, or a reason to refuse.
public enum DrainPlan: Sendable {
    /// No run of FROM under way: journal a drain-only run (the cutover was made elsewhere).
    case fresh
    /// The latest run moved traffic from FROM and is promoted or draining (or drained): track its
    /// drain on (the coordinator re-asserts `setDrain` and takes fresh samples).
    case resume(run: RunRecord, state: CutoverState)
    case refuse(String)
}

extension RunSetup {
    /// `switchover drain FROM`: resume the latest run's drain when it is FROM's and past promotion,
    /// start a drain-only run when the latest run is over (or there is none), refuse otherwise.
    public static func planDrain(journal: any JournalStore, from: String) throws -> DrainPlan {
        guard let (latest, state) = try StateLocation.latestRun(in: journal) else { return .fresh }
        if state.phase.isFinal { return .fresh }
        guard latest.from == from else {
            return .refuse("run \(latest.id) from \(latest.from) to \(latest.to) is not over (phase \(state.phase.rawValue)); finish it before tracking \(from)'s drain")
        }
        switch state.phase {
        case .promoted, .draining, .drained:
            return .resume(run: latest, state: state)
        default:
            return .refuse("run \(latest.id) from \(latest.from) to \(latest.to) is \(state.phase.rawValue): \(from) still takes traffic by design; `switchover run` goes on to the drain once promoted")
        }
    }

    /// The state a drain-only run starts from: `promoted` at the policy's last step with the
    /// live share to TO, so the engine's next tick starts the drain exactly as after a cutover.
    public static func drainOnlyState(policy: Policy, percentToTarget: Double, now: Instant) -> CutoverState {
        var state = CutoverState.initial
        state.phase = .promoted
        state.step = StepSchedule(policy: policy).count
        state.percentToTarget = percentToTarget
        state.promotedAt = now
        return state
    }
}
