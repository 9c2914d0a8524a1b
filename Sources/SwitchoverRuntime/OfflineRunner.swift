import Foundation
import SwitchoverCore
import SwitchoverSignals
import SwitchoverStore
#if canImport(Glibc)
import Glibc
#endif

extension Coordinator {
    /// Carries out one journaled command with no coordinator running (`switchover rollback`
    /// after the coordinator died, `switchover decommission` after the run ended): feeds it to the
    /// engine and performs what follows until the engine has nothing more to do right now,
    /// retrying an unverified rollback a few times. The caller holds the journal's lease, so no
    /// coordinator starts meanwhile, and a coordinator deposed by it is fenced.
    ///
    /// A `decommission` first takes a fresh sample of the load balancer: the evidence it is
    /// judged on and journaled with is FROM as it is now, read by this process, not as the last
    /// coordinator left it (traffic that reached FROM since, or FROM's weight back after a
    /// load-balancer restart, turns a drained run back to draining, and it refuses). Unread, it
    /// is refused unless forced.
    public func runOffline(_ command: ManualCommand, id: Int64) async throws -> CutoverState {
        try journalAppend("offlineCommand", "\(command.name) carried out by pid \(getpid()) with no coordinator running")
        try interpreter.closeInterrupted()
        return try await withThrowingDiscardingTaskGroup(returning: CutoverState.self) { group in
            if case .decommission(let force, _) = command {
                do {
                    // Journaled from the engine's state, with the decision on it (`saveAndPerform`).
                    let sample = try await sampler.sample(at: clock())
                    // The sample alone is the evidence (FROM's sessions, new sessions and live
                    // weight). The live weights are not fed: against the journal they would make
                    // the engine write weights and drain FROM again, which is `run`'s or
                    // `drain`'s business, not a command that may well refuse.
                    try await feed(.loadBalancerSample(sample), group: &group)
                } catch {
                    try journalAppend("sampleFailed", "no fresh sample of the load balancer before decommission: \(error)")
                    if !force {
                        // Decided here, not by the engine's `staleEvidence`: offline, the evidence
                        // must be a reading this command took, however fresh the journaled one
                        // looks (with a long sampling period it can be minutes old and "fresh").
                        let why = "no fresh evidence that \(engine.from) is drained: the load balancer could not be read just now "
                            + "(\(error)); decommission is decided on a reading taken by this command; `--force --reason TEXT` records it anyway"
                        try record(EngineEvent(.commandRefused, "decommission refused: \(why)", phase: state.phase), at: clock())
                        try journal.acknowledgeCommand(id, at: clock(), accepted: false, outcome: why, fence: fence)
                        group.cancelAll()
                        return state
                    }
                }
            }
            // An unfinished weight change the last coordinator left (it died mid-step, say) is
            // not finished first: a rollback is a new 0% intent that supersedes it, and pushing
            // TO to a step's share on the way back would be the opposite of what was asked.
            try await feed(.command(command, id: id), group: &group)
            var tries = 0
            while state.phase == .rolledBack, !state.rollbackVerified, tries < 5 {
                tries += 1
                try await Task.sleep(for: .milliseconds(200))
                try await feed(.tick, group: &group)
            }
            try journalObservations(all: true)
            group.cancelAll()
            return state
        }
    }
}
