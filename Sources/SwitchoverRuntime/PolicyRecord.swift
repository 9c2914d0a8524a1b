import Foundation
import SwitchoverCore
import SwitchoverStore

/// The policy a run goes on under, in the journal (`policy` events holding a
/// `PolicyFingerprint`): recorded when the run begins, compared when it resumes, recorded again
/// when a person adopts an edited one. A resume never silently follows an edited policy.
public enum PolicyRecord {
    /// The journal's event kind.
    public static let kind = "policy"

    /// What resuming under `policy` means for a journaled run.
    public enum Resume: Sendable {
        /// The same policy (or a journal from before policies were recorded: it is recorded now).
        case same(CutoverState)
        /// Edited, and to be adopted: what changed, the state the run would go on from (never a
        /// step back), and `apply`, which adopts it and journals the adoption. Call `apply` only
        /// once the checks before resuming passed: a failed resume leaves the run as journaled.
        case adopt(changes: [String], preview: CutoverState, apply: @Sendable (CutoverState) throws -> CutoverState)
        /// Edited, not adopted (or not adoptable): why, naming what changed; nothing was changed.
        case refused(String)
    }

    /// Journals `policy` for run `run`; `note` says why (begun, adopted, recorded at resume).
    public static func record(_ policy: Policy, run: Int64, in journal: any JournalStore, at: Instant, note: String) throws {
        struct Detail: Encodable {
            var message: String
            var policy: PolicyFingerprint
        }
        try journal.append(JournalEvent(run: run, at: at, kind: kind,
                                        detail: try JournalJSON.encode(Detail(message: note, policy: PolicyFingerprint(policy)))))
    }

    /// The policy run `run` last went on under, or nil when the journal has none (older journals).
    public static func journaled(run: Int64, in journal: any JournalStore) throws -> PolicyFingerprint? {
        struct Detail: Decodable { var policy: PolicyFingerprint }
        guard let event = try journal.lastEvent(run: run, kind: kind) else { return nil }
        do {
            return try JSONDecoder().decode(Detail.self, from: Data(event.detail.utf8)).policy
        } catch {
            throw StoreError(.corrupt, "run \(run)'s recorded policy does not decode: \(error)")
        }
    }

    /// Compares `policy` with the one run `run` was journaled with, and decides: the same goes
    /// on; an edited one refuses unless `adopt`, and adopting it never steps back (see
    /// `CutoverState.adopting`). Journals the policy for journals without one; an adoption is
    /// journaled by `Resume.adopt`'s `apply`, once the checks passed.
    public static func resume(_ state: CutoverState, run: RunRecord, under policy: Policy, adopt: Bool,
                              journal: any JournalStore, at: Instant) throws -> Resume {
        let current = PolicyFingerprint(policy)
        guard let recorded = try journaled(run: run.id, in: journal) else {
            try record(policy, run: run.id, in: journal, at: at,
                       note: "policy \(policy.name) recorded at resume: run \(run.id) began before policies were journaled")
            return .same(state)
        }
        let changes = recorded.changes(to: current)
        // Equal hashes, or differing only in fields added to fingerprints since it was journaled.
        guard recorded.hash != current.hash, !changes.isEmpty else { return .same(state) }
        let what = "policy \(policy.name) changed since run \(run.id) began: " + changes.joined(separator: "; ")
        guard adopt else {
            return .refused(what + ". Resume with the policy as it was, or pass --adopt-policy to go on under the new one "
                            + "(the run never steps back: it goes on at the first new step at or above "
                            + "\(formatPercent(state.appliedPercent ?? state.percentToTarget))%)")
        }
        let preview: CutoverState
        do {
            preview = try state.adopting(policy)
        } catch {
            return .refused(what + "; cannot adopt it now: \(error)")
        }
        let runID = run.id
        return .adopt(changes: changes, preview: preview, apply: { current in
            let adopted = try current.adopting(policy)
            try record(policy, run: runID, in: journal, at: at,
                       note: "adopted by --adopt-policy at step \(adopted.step) of \(StepSchedule(policy: policy).count): " + changes.joined(separator: "; "))
            return adopted
        })
    }

    static func formatPercent(_ value: Double) -> String { format(value) }
}
