import Foundation
import Testing
@testable import SwitchoverCore

/// The policy a run is journaled with, and going on under an edited one (issue 11, item 5).
@Suite struct PolicyAdoptionTests {
    static func shifting(at percent: Double, step: Int) -> CutoverState {
        var state = CutoverState.initial
        state.phase = .shifting
        state.step = step
        state.percentToTarget = percent
        state.appliedPercent = percent
        state.stepStartedAt = .seconds(1)
        return state
    }

    @Test("adopting never steps back: at 50% the run goes on at the first new step at or above it",
          arguments: [([10.0, 100], 2, 100.0), ([1, 2, 3, 100], 4, 100), ([10, 25, 60, 100], 3, 60), ([10, 50, 100], 2, 50)])
    func neverStepsBack(steps: [Double], step: Int, percent: Double) throws {
        let adopted = try Self.shifting(at: 50, step: 3).adopting(testPolicy(steps: steps))
        #expect(adopted.step == step)
        #expect(adopted.stepStartedAt == nil, "the step is written again and bakes again")
        let engine = CutoverEngine(policy: testPolicy(steps: steps), from: "blue", to: "green")
        #expect(engine.percent(atStep: adopted.step) == percent)
    }

    @Test("an unfinished weight change cannot be adopted: it finishes under the policy it began with")
    func pendingRefuses() {
        var state = Self.shifting(at: 25, step: 2)
        state.pendingWeights = PendingWeights(intent: 3, percentToTarget: 50, step: 3, purpose: .step, issuedAt: .seconds(2))
        #expect(throws: PolicyAdoptionError.self) { try state.adopting(testPolicy(steps: [10, 100])) }
    }

    @Test("a promoted or draining run stands at the new last step")
    func promotedStandsAtLastStep() throws {
        var state = Self.shifting(at: 100, step: 3)
        state.phase = .draining
        #expect(try state.adopting(testPolicy(steps: [5, 20, 60, 100])).step == 4)
    }

    @Test("the fingerprint: equal policies hash equal; an edit is named field by field; a URL's query never appears")
    func fingerprint() throws {
        let before = PolicyFingerprint(testPolicy(steps: [10, 25, 50, 100]))
        #expect(before == PolicyFingerprint(testPolicy(steps: [10, 25, 50, 100])))
        let after = PolicyFingerprint(testPolicy(steps: [10, 100], bake: .seconds(5)))
        #expect(before.hash != after.hash)
        #expect(before.changes(to: after) == ["bake 10s → 5s", "steps [10, 25, 50, 100] → [10, 100]"])
        var withToken = testPolicy()
        withToken.gates = [Gate(name: "p", source: .prometheus(PrometheusGate(
            url: URL(string: "http://user:pw@prom:9090/x?token=s3cret")!, query: "q", min: nil, max: 1)),
            location: SourceLocation(file: "p.yaml", line: 1, column: 1))]
        let text = PolicyFingerprint(withToken).fields["gates"] ?? ""
        #expect(!text.contains("s3cret") && !text.contains("pw@"), "\(text)")
        var otherToken = withToken
        otherToken.gates[0].source = .prometheus(PrometheusGate(url: URL(string: "http://user:pw@prom:9090/x?token=other")!,
                                                                query: "q", min: nil, max: 1))
        #expect(PolicyFingerprint(otherToken).hash != PolicyFingerprint(withToken).hash, "a changed token is still a change")
    }

    @Test("adding a drain section with default values is an edit (it changes run's goal); a field newer than the journal is not")
    func drainDeclaredAndNewerFields() {
        let without = testPolicy()
        var with = without
        with.drainDeclared = true
        #expect(PolicyFingerprint(without).changes(to: PolicyFingerprint(with)) == ["drainDeclared false → true"])
        // A fingerprint journaled before `drainDeclared` was recorded: resuming is no edit.
        var journaled = PolicyFingerprint(with)
        journaled.fields["drainDeclared"] = nil
        #expect(journaled.changes(to: PolicyFingerprint(with)).isEmpty)
    }
}
