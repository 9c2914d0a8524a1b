import Foundation
import Testing
@testable import SwitchoverCore

/// Webhooks in the engine: confirmation waits, pre-rollout, rollback hooks (Flagger's meanings).
@Suite struct HookEngineTests {
    static func hook(_ name: String, _ type: WebhookType) -> Webhook {
        Webhook(name: name, type: type, url: URL(string: "http://127.0.0.1:1/\(name)")!,
                location: SourceLocation(file: "policies/test.yaml", line: 20, column: 5))
    }

    static func policy(_ hooks: [Webhook], steps: [Double] = [10, 50, 100]) -> Policy {
        var policy = testPolicy(steps: steps, bake: .seconds(3))
        policy.webhooks = hooks
        return policy
    }

    /// Ticks `seconds` times, answering the gate `latency` with pass and each hook with `hooks`,
    /// reading weights back as applied.
    @discardableResult
    static func run(_ h: inout Harness, seconds: Int, hooks: (String) -> GateOutcome) -> [Action] {
        var all: [Action] = []
        for _ in 0..<seconds {
            h.advance(.seconds(1))
            let actions = h.send(.tick)
            all += actions + answer(&h, actions, hooks: hooks)
        }
        return all
    }

    @discardableResult
    static func answer(_ h: inout Harness, _ actions: [Action], hooks: (String) -> GateOutcome) -> [Action] {
        var all: [Action] = []
        for action in actions {
            switch action {
            case .evaluateGates(let evaluation, let gates):
                let results = gates.map { GateResult(gate: $0, outcome: $0 == "latency" ? .pass("ok") : hooks($0)) }
                let more = h.send(.gateResults(evaluation: evaluation, results: results))
                all += more + answer(&h, more, hooks: hooks)
            case .setWeights(let intent, let percent, _, _):
                let more = h.send(.weightsApplied(intent: intent, result: .verified(percentToTarget: percent)))
                all += more + answer(&h, more, hooks: hooks)
            default:
                break
            }
        }
        return all
    }

    static func begin(_ h: inout Harness, hooks: (String) -> GateOutcome) -> [Action] {
        var actions = h.send(.tick)
        let after = h.send(.preflight(.passed))
        actions += after + answer(&h, after, hooks: hooks)
        return actions
    }

    @Test("confirm-promotion answering 403 holds the run at the step before 100% while its gates go on; 2xx promotes")
    func confirmPromotionWaits() {
        var h = Harness(Self.policy([Self.hook("approve", .confirmPromotion)]))
        var approve = GateOutcome.fail("HTTP 403")
        var actions = Self.begin(&h, hooks: { _ in approve })
        actions += Self.run(&h, seconds: 20, hooks: { _ in approve })
        #expect(actions.weightChanges.map(\.percent) == [10, 50])
        #expect(h.state.step == 2)
        #expect(h.state.hookWait?.waitingFor == ["approve"])
        #expect(h.state.hookWait?.step == 3)
        #expect(actions.events(.hookWaiting).count == 2)  // the wait, then its first answer
        // The gates are still evaluated while waiting, and the hook asked every interval.
        let latencyAsks = actions.compactMap { if case .evaluateGates(_, let g) = $0, g == ["latency"] { 1 } else { nil } }
        #expect(latencyAsks.count >= 15)
        #expect(actions.compactMap { if case .evaluateGates(_, let g) = $0, g == ["approve"] { 1 } else { nil } }.count >= 10)
        approve = .pass("HTTP 200")
        actions = Self.run(&h, seconds: 8, hooks: { _ in approve })
        #expect(actions.weightChanges.map(\.percent) == [100])
        #expect(actions.events(.hookConfirmed).count == 1)
        #expect(h.state.promotedAt != nil)
        #expect(h.state.hookWait == nil)
    }

    @Test("a gate failing while the step waits for confirmation still rolls back")
    func gateFailureWhileWaiting() {
        var h = Harness(Self.policy([Self.hook("approve", .confirmTrafficIncrease)]))
        var actions = Self.begin(&h, hooks: { _ in .pass("HTTP 200") })
        actions += Self.run(&h, seconds: 5, hooks: { _ in .fail("HTTP 403") })
        #expect(h.state.hookWait?.step == 2)
        h.advance(.seconds(1))
        let tick = h.send(.tick)
        for case .evaluateGates(let evaluation, let gates) in tick where gates == ["latency"] {
            h.send(.gateResults(evaluation: evaluation, results: [GateResult(gate: "latency", outcome: .fail("p99 0.9"))]))
            h.advance(.seconds(1))
            let again = h.send(.tick)
            for case .evaluateGates(let e2, let g2) in again where g2 == ["latency"] {
                h.send(.gateResults(evaluation: e2, results: [GateResult(gate: "latency", outcome: .fail("p99 0.9"))]))
            }
        }
        #expect(h.state.phase == .rolledBack)
        #expect(h.state.hookWait == nil)
    }

    @Test("confirm-traffic-increase waits before every step, the first included")
    func confirmEveryStep() {
        var h = Harness(Self.policy([Self.hook("more", .confirmTrafficIncrease)]))
        let actions = Self.begin(&h, hooks: { _ in .fail("HTTP 409") })
        #expect(actions.weightChanges.isEmpty)
        #expect(h.state.phase == .shifting)
        #expect(h.state.step == 0)
        #expect(h.state.hookWait?.step == 1)
        let later = Self.run(&h, seconds: 30, hooks: { _ in .pass("HTTP 200") })
        #expect(later.weightChanges.map(\.percent) == [10, 50, 100])
        #expect(later.events(.hookConfirmed).count == 3)
        #expect(h.state.promotedAt != nil)
    }

    @Test("pre-rollout answering 500 aborts the run before any weight is written")
    func preRolloutRefuses() {
        var h = Harness(Self.policy([Self.hook("smoke", .preRollout)]))
        var actions = Self.begin(&h, hooks: { _ in .fail("HTTP 500") })
        actions += Self.run(&h, seconds: 5, hooks: { _ in .pass("HTTP 200") })
        #expect(actions.weightChanges.isEmpty)
        #expect(h.state.phase == .aborted)
        #expect(h.state.reason?.contains("pre-rollout hook smoke") == true)
        #expect(actions.events(.hookRefused).first?.gate == "smoke")
        #expect(h.state.outcome(goal: .promoted, sampledThisProcess: true, drainTimeout: .seconds(60),
                                rollbackGate: nil, rollbackAt: nil) == .aborted(reason: h.state.reason!))
    }

    @Test("a pre-rollout hook that does not answer aborts too (error is not a pass)")
    func preRolloutUnreachable() {
        var h = Harness(Self.policy([Self.hook("smoke", .preRollout)]))
        let actions = Self.begin(&h, hooks: { _ in .error("connection refused") })
        #expect(actions.weightChanges.isEmpty)
        #expect(h.state.phase == .aborted)
    }

    @Test("confirm-rollout first, then pre-rollout once, then step 1; pre-rollout is not asked again")
    func confirmRolloutThenPreRollout() {
        var h = Harness(Self.policy([Self.hook("go", .confirmRollout), Self.hook("smoke", .preRollout)]))
        var asked: [[String]] = []
        var go = GateOutcome.fail("HTTP 403")
        func record(_ actions: [Action]) {
            for case .evaluateGates(_, let gates) in actions where gates != ["latency"] { asked.append(gates) }
        }
        var actions = Self.begin(&h, hooks: { _ in go })
        actions += Self.run(&h, seconds: 3, hooks: { _ in go })
        record(actions)
        #expect(actions.weightChanges.isEmpty)
        #expect(Set(asked) == [["go"]])
        go = .pass("HTTP 200")
        asked = []
        actions = Self.run(&h, seconds: 20, hooks: { _ in go })
        record(actions)
        #expect(asked.first == ["go"])
        #expect(asked.filter { $0 == ["smoke"] }.count == 1)
        #expect(h.state.preRolloutPassed == true)
        #expect(actions.weightChanges.map(\.percent) == [10, 50, 100])
    }

    @Test("a rollback hook answering 2xx mid-run rolls back at once; other answers change nothing")
    func rollbackHook() {
        var h = Harness(Self.policy([Self.hook("panic", .rollback)], steps: [10, 20, 30, 50, 100]))
        var panic = GateOutcome.fail("HTTP 404")
        var actions = Self.begin(&h, hooks: { _ in panic })
        actions += Self.run(&h, seconds: 5, hooks: { _ in panic })
        #expect(h.state.phase == .shifting)
        #expect(h.state.step == 2)
        panic = .pass("HTTP 200")
        actions = Self.run(&h, seconds: 2, hooks: { _ in panic })
        #expect(h.state.phase == .rolledBack)
        #expect(actions.weightChanges.last?.purpose == .rollback)
        #expect(actions.events(.hookRollback).first?.gate == "panic")
        #expect(actions.events(.rollbackStarted).first?.gate == "panic")
    }

    @Test("promote skips a confirmation wait; abort ends it")
    func commandsWhileWaiting() {
        var h = Harness(Self.policy([Self.hook("approve", .confirmPromotion)]))
        _ = Self.begin(&h, hooks: { _ in .fail("HTTP 403") })
        Self.run(&h, seconds: 12, hooks: { _ in .fail("HTTP 403") })
        #expect(h.state.hookWait != nil)
        let promoted = h.send(.command(.promote, id: 7))
        #expect(promoted.acknowledgements.first?.accepted == true)
        #expect(promoted.weightChanges.map(\.percent) == [100])
        #expect(h.state.hookWait == nil)

        var other = Harness(Self.policy([Self.hook("approve", .confirmPromotion)]))
        _ = Self.begin(&other, hooks: { _ in .fail("HTTP 403") })
        Self.run(&other, seconds: 12, hooks: { _ in .fail("HTTP 403") })
        let aborted = other.send(.command(.abort(reason: "no approval"), id: 8))
        #expect(aborted.weightChanges.isEmpty)
        #expect(other.state.phase == .aborted)
        #expect(other.state.hookWait == nil)
    }

    @Test("promote before the first step is refused while pre-rollout hooks have not passed")
    func promoteBeforePreRollout() {
        var h = Harness(Self.policy([Self.hook("go", .confirmRollout), Self.hook("smoke", .preRollout)]))
        _ = Self.begin(&h, hooks: { _ in .fail("HTTP 403") })
        let actions = h.send(.command(.promote, id: 3))
        #expect(actions.acknowledgements.first?.accepted == false)
        #expect(actions.weightChanges.isEmpty)
    }

    @Test("paused and resumed while the first step waits: no weight is written for step 0, the hooks are asked again")
    func pauseResumeBeforeFirstStep() {
        var h = Harness(Self.policy([Self.hook("go", .confirmRollout)]))
        _ = Self.begin(&h, hooks: { _ in .fail("HTTP 403") })
        h.send(.command(.pause(reason: nil), id: 1))
        #expect(h.state.phase == .paused)
        let resumed = h.send(.command(.resume, id: 2))
        #expect(resumed.weightChanges.isEmpty)
        #expect(resumed.contains { if case .evaluateGates(_, let g) = $0 { g == ["go"] } else { false } })
        let later = Self.answer(&h, resumed, hooks: { _ in .pass("HTTP 200") })
        #expect(later.weightChanges.map(\.percent) == [10])
    }

    @Test("a coordinator resumed while waiting asks the hooks again and writes nothing before the first step")
    func recoverWhileWaiting() {
        var h = Harness(Self.policy([Self.hook("go", .confirmRollout)]))
        _ = Self.begin(&h, hooks: { _ in .fail("HTTP 403") })
        let (state, actions) = h.engine.recover(h.state, now: h.now + .seconds(5))
        #expect(actions.weightChanges.isEmpty)
        #expect(state.hookWait?.evaluation == nil)
        h.state = state
        h.advance(.seconds(6))
        let tick = h.send(.tick)
        #expect(tick.contains { if case .evaluateGates(_, let g) = $0 { g == ["go"] } else { false } })
    }

    @Test("an edited policy adopted while the first step waits for its hooks stays before step 1: no weight until the new hooks answer")
    func adoptionWhileWaitingBeforeFirstStep() throws {
        var h = Harness(Self.policy([Self.hook("go", .confirmRollout), Self.hook("smoke", .preRollout)]))
        _ = Self.begin(&h, hooks: { _ in .fail("HTTP 403") })
        #expect(h.state.step == 0 && h.state.hookWait != nil)
        let edited = Self.policy([Self.hook("go2", .confirmRollout), Self.hook("smoke", .preRollout)])
        let adopted = try h.state.adopting(edited)
        #expect(adopted.step == 0)
        #expect(adopted.hookWait == nil)
        var next = Harness(edited)
        next.now = h.now + .seconds(10)
        let (state, actions) = next.engine.recover(adopted, now: next.now)
        #expect(actions.weightChanges.isEmpty)
        #expect(actions.contains { if case .evaluateGates(_, let g) = $0 { g == ["go2"] } else { false } })
        #expect(state.hookWait?.waitingFor == ["go2"])
    }

    @Test("before the first step's weights, an instance not answering or a restarted load balancer writes nothing")
    func liveWeightsBeforeFirstStep() {
        var h = Harness(Self.policy([Self.hook("go", .confirmRollout)]))
        _ = Self.begin(&h, hooks: { _ in .fail("HTTP 403") })
        let first = LoadBalancerInstance(id: "pid 1", startedAt: .seconds(1))
        let restarted = LoadBalancerInstance(id: "pid 2", startedAt: .seconds(900))
        var actions = h.send(.liveWeights(LiveWeightsReading(at: h.now, percentToTarget: 0, fromWeight: 1, toWeight: 0, instance: first,
                                                             fromInDrain: false, unreachable: ["lb-b: connection refused"])))
        actions += h.send(.liveWeights(LiveWeightsReading(at: h.now, percentToTarget: 0, fromWeight: 1, toWeight: 0, instance: restarted,
                                                          fromInDrain: false)))
        #expect(actions.weightChanges.isEmpty)
        #expect(h.state.phase == .shifting)
        #expect(h.state.weightsRetry == nil)
        #expect(h.state.loadBalancer == restarted)
    }

    @Test("a paused run resumed before its first step (hooks cleared by an adoption) asks the hooks, writes no weight")
    func resumeBeforeFirstStepWithoutWait() throws {
        var h = Harness(Self.policy([Self.hook("go", .confirmRollout)]))
        _ = Self.begin(&h, hooks: { _ in .fail("HTTP 403") })
        h.send(.command(.pause(reason: nil), id: 1))
        h.state = try h.state.adopting(h.engine.policy)
        let resumed = h.send(.command(.resume, id: 2))
        #expect(resumed.weightChanges.isEmpty)
        #expect(resumed.contains { if case .evaluateGates(_, let g) = $0 { g == ["go"] } else { false } })
    }
}
