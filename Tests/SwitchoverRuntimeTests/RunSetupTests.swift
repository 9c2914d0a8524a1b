import Foundation
import SwitchoverCore
import SwitchoverRuntime
import SwitchoverStore
import Testing

/// Deciding between a new run, a resume and a refusal from what the journal holds.
struct RunSetupTests {
    func journal(with state: CutoverState, from: String = "blue", to: String = "green", policy: String = "p") throws -> MemoryJournal {
        let journal = MemoryJournal()
        let run = try journal.startRun(RunRecord(from: from, to: to, policy: policy, startedAt: .seconds(1), pid: 1))
        try journal.saveState(run: run, at: .seconds(2), state)
        return journal
    }

    @Test("an empty journal or a finished run starts fresh")
    func fresh() throws {
        guard case .fresh = try RunSetup.plan(journal: MemoryJournal(), from: "blue", to: "green", policy: "p") else {
            Issue.record("expected fresh"); return
        }
        var done = CutoverState.initial
        done.phase = .rolledBack
        done.rollbackVerified = true
        guard case .fresh = try RunSetup.plan(journal: try journal(with: done), from: "blue", to: "green", policy: "p") else {
            Issue.record("expected fresh after a rollback"); return
        }
    }

    @Test("an unfinished run of the same pair and policy resumes; another pair is refused, naming it")
    func resumeOrConflict() throws {
        var shifting = CutoverState.initial
        shifting.phase = .shifting
        shifting.step = 2
        shifting.percentToTarget = 10
        // PendingWeights has no public initializer: the engine makes them. Decode one as journaled.
        shifting.pendingWeights = try JSONDecoder().decode(PendingWeights.self, from: Data(
            #"{"intent":3,"percentToTarget":25,"step":2,"purpose":"step","issuedAt":3000}"#.utf8))
        let j = try journal(with: shifting)
        guard case .resume(_, let state) = try RunSetup.plan(journal: j, from: "blue", to: "green", policy: "p") else {
            Issue.record("expected resume"); return
        }
        #expect(state.step == 2)
        #expect(RunSetup.expectedPercentages(resuming: state) == [10, 25])
        guard case .conflict(let why) = try RunSetup.plan(journal: j, from: "blue", to: "green", policy: "other") else {
            Issue.record("expected conflict"); return
        }
        #expect(why.contains("policy p") && why.contains("shifting"))
    }

    @Test("a rollback not yet verified is resumed (to finish it), not replaced by a fresh run")
    func unverifiedRollbackResumes() throws {
        var rolling = CutoverState.initial
        rolling.phase = .rolledBack
        rolling.rollbackVerified = false
        guard case .resume(_, let state) = try RunSetup.plan(journal: try journal(with: rolling), from: "blue",
                                                            to: "green", policy: "p") else {
            Issue.record("expected resume of the unverified rollback"); return
        }
        #expect(state.phase == .rolledBack)
        guard case .conflict = try RunSetup.plan(journal: try journal(with: rolling), from: "blue", to: "red",
                                                 policy: "p") else {
            Issue.record("expected another pair to be refused while the rollback is unfinished"); return
        }
    }

    @Test("a promoted run has nothing left to do with --until promoted")
    func promoted() throws {
        var promoted = CutoverState.initial
        promoted.phase = .promoted
        guard case .alreadyDone = try RunSetup.plan(journal: try journal(with: promoted), from: "blue", to: "green", policy: "p") else {
            Issue.record("expected alreadyDone"); return
        }
    }

    @Test("manual commands survive the journal's text form")
    func commandCodec() {
        let commands: [ManualCommand] = [.pause(reason: "look"), .resume, .promote, .abort(reason: nil),
                                         .rollback(reason: "bad \"quotes\""), .decommission(force: true, reason: "r")]
        for command in commands {
            let (name, arguments) = CommandCodec.encode(command)
            #expect(CommandCodec.decode(name: name, arguments: arguments) == command)
        }
        #expect(CommandCodec.decode(name: "explode", arguments: "{}") == nil)
    }
}
