import Foundation
import Testing
@testable import SwitchoverCore

@Suite("Cutover engine: a rollback is verified whole and can always be finished")
struct RollbackCompletionEngineTests {
    /// The rollback's weights intent among `actions`.
    static func rollbackIntent(_ actions: [Action]) -> Int? {
        for case .setWeights(let intent, _, _, .rollback) in actions { return intent }
        return nil
    }

    /// The position of `setReady(blue)` and of the rollback's `setWeights` among `actions`.
    static func order(_ actions: [Action]) -> (ready: Int?, weights: Int?) {
        (actions.firstIndex(of: .setReady(cluster: "blue")),
         actions.firstIndex { if case .setWeights(_, _, _, .rollback) = $0 { true } else { false } })
    }

    @Test("a rollback from the drain whose setReady failed stays unverified; each retry sends setReady(FROM) first")
    func retriesSendReadyFirst() throws {
        var (h, _) = CutoverEngineDrainTests.draining()
        let rollback = h.send(.command(.rollback(reason: "green regression"), id: 1))
        let intent = try #require(Self.rollbackIntent(rollback))
        // What the runtime reports when `set server … state ready` failed.
        h.send(.weightsApplied(intent: intent, result: .mismatch(detail: "setReady blue failed: timeout")))
        #expect(!h.state.rollbackVerified)

        h.advance(.milliseconds(250))
        let retry = h.send(.tick)
        let (ready, weights) = Self.order(retry)
        #expect(ready != nil, "the retry sends setReady(blue) again")
        #expect(weights != nil)
        if let ready, let weights { #expect(ready < weights, "ready before the weights") }

        // Recovery of the same unverified rollback, with its weights in flight or not: ready first too.
        let inFlight = h.engine.recover(h.state, now: h.now)
        #expect(Self.order(inFlight.1).ready != nil)
        #expect(Self.order(inFlight.1).weights != nil)
        var settled = h.state
        settled.pendingWeights = nil
        let resent = h.engine.recover(settled, now: h.now)
        #expect(Self.order(resent.1).ready != nil)
        #expect(Self.order(resent.1).weights != nil)

        h.verify(retry)
        #expect(h.state.rollbackVerified)
    }

    @Test("a rollback during a step never touches FROM's readiness (it was never put in drain)")
    func noReadyWithoutDrain() throws {
        var h = Harness()
        h.start()
        let rollback = h.send(.command(.rollback(reason: nil), id: 1))
        let intent = try #require(Self.rollbackIntent(rollback))
        h.send(.weightsApplied(intent: intent, result: .mismatch(detail: "socket timeout")))
        h.advance(.milliseconds(250))
        let retry = h.send(.tick)
        #expect(retry.weightChanges.map(\.percent) == [0])
        #expect(!retry.contains(.setReady(cluster: "blue")))
        #expect(!rollback.contains(.setReady(cluster: "blue")))
    }

    @Test("`rollback` on an unverified rollback is accepted and sends it again; on a verified one it is refused")
    func rollbackCommandOnUnverifiedRollback() throws {
        var (h, _) = CutoverEngineDrainTests.draining()
        let first = h.send(.command(.rollback(reason: nil), id: 1))
        let intent = try #require(Self.rollbackIntent(first))
        h.send(.weightsApplied(intent: intent, result: .mismatch(detail: "socket timeout")))
        #expect(h.state.phase == .rolledBack && !h.state.rollbackVerified)

        let again = h.send(.command(.rollback(reason: "again"), id: 2))
        #expect(again.acknowledgements.map(\.accepted) == [true])
        #expect(again.weightChanges.map(\.percent) == [0])
        #expect(again.contains(.setReady(cluster: "blue")))
        h.verify(again)
        #expect(h.state.rollbackVerified)

        let third = h.send(.command(.rollback(reason: nil), id: 3))
        #expect(third.acknowledgements.map(\.accepted) == [false])
        #expect(third.weightChanges.isEmpty)
    }

    @Test("an unfinished rollback intent is re-emitted by recover and, read back, verifies the rollback")
    func recoverFinishesUnfinishedRollback() throws {
        var h = Harness()
        h.start()
        let rollback = h.send(.command(.rollback(reason: nil), id: 1))
        let intent = try #require(Self.rollbackIntent(rollback))
        // Died before the read-back: recover re-emits the same intent, and its answer counts.
        let (state, actions) = h.engine.recover(h.state, now: h.now)
        h.state = state
        #expect(Self.rollbackIntent(actions) == intent)
        h.verify(actions)
        #expect(h.state.rollbackVerified)
    }

    @Test("a run resumed in preflight asks for the preflight again and starts step 1 on its answer")
    func resumeInPreflight() {
        var h = Harness()
        h.send(.tick)
        #expect(h.state.phase == .preflight)
        let (state, actions) = h.engine.recover(h.state, now: h.now)
        h.state = state
        #expect(actions.contains(.runPreflight))
        let started = h.send(.preflight(.passed))
        #expect(h.state.phase == .shifting)
        #expect(started.weightChanges.map(\.step) == [1])
    }
}
