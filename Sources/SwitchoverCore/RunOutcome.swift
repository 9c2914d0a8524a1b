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
    /// The drain's `timeout` passed first; `reason` says what is still open.
    case drainTimedOut(reason: String)
    /// Decommissioned (by command) while the coordinator tracked the drain.
    case decommissioned(reason: String)
    /// The checks before resuming failed (each failure a sentence); nothing was changed.
    case preflightFailed([String])
    /// Another coordinator took the journal's lease: this one journaled no further intent and
    /// moved no weight from the moment it was taken (fencing); `reason` says what it saw.
    case leaseLost(reason: String)
}

extension CutoverState {
    /// The outcome this state means for a coordinator working towards `goal`, or nil while the
    /// run goes on. Nothing is claimed that was not read back: weights still being written
    /// again (a restarted load balancer) or differing from the journal settle first; `drained`
    /// needs a sample taken by this coordinator (`sampledThisProcess`), never a journaled state
    /// alone; a rollback counts once it read back verified.
    public func outcome(goal: RunGoal, sampledThisProcess: Bool, drainTimeout: Duration,
                        rollbackGate: String? = nil, rollbackAt: Instant? = nil) -> RunOutcome? {
        let settled = pendingWeights == nil && drift == nil
        if goal == .promoted, [.promoted, .draining, .drained, .decommissioned].contains(phase) {
            return settled || phase == .decommissioned ? .promoted : nil
        }
        switch phase {
        case .draining:
            guard let drain, drain.status == .timedOut else { return nil }
            return .drainTimedOut(reason: "not drained after \(formatDuration(drainTimeout)): \(drain.reason)")
        case .drained:
            guard sampledThisProcess, settled else { return nil }
            return .drained(reason: drain?.reason ?? "drained")
        case .decommissioned:
            return .decommissioned(reason: reason ?? "drained")
        case .rolledBack:
            guard rollbackVerified, pendingWeights == nil else { return nil }
            return .rolledBack(reason: reason ?? "rolled back", gate: rollbackGate, at: rollbackAt)
        case .aborted:
            return .aborted(reason: reason ?? "aborted")
        default:
            return nil
        }
    }
}
