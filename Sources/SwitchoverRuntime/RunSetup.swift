import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverStore

/// What `switchover run` finds in the journal before it starts, and what it will do about it.
public enum RunPlan: Sendable {
    /// No run, or the latest is over: start a new one. The live weights must be 0% to TO.
    case fresh
    /// The latest run is this pair under this policy and not over: resume from its state.
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
        guard let latest = try journal.latestRun() else { return .fresh }
        guard let snapshot = try journal.loadState(run: latest.id) else { return .fresh }
        let state: CutoverState
        do {
            state = try JSONDecoder().decode(CutoverState.self, from: Data(snapshot.json.utf8))
        } catch {
            throw RuntimeError(.corruptState, "run \(latest.id)'s journaled state cannot be read: \(error)")
        }
        if state.phase.isFinal { return .fresh }
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
