import Foundation
import Testing
@testable import SwitchoverCore

/// The engine's rules for live weights that differ from the journal (issue 11, items 1, 2, 4),
/// on a manual clock: a restart is repaired, a person's change never overridden, FROM drained
/// only behind verified weights, decommission decided on fresh readings only.
@Suite struct DriftEngineTests {
    static let haproxy = LoadBalancerInstance(id: "pid 100", startedAt: .seconds(500))
    static let restarted = LoadBalancerInstance(id: "pid 200", startedAt: .seconds(990))

    static func reading(_ h: Harness, percent: Double, instance: LoadBalancerInstance = haproxy,
                        fromInDrain: Bool? = nil) -> LiveWeightsReading {
        let to = Int((percent * 2.56).rounded()), from = 256 - to
        return LiveWeightsReading(at: h.now, percentToTarget: percent, fromWeight: from, toWeight: to,
                                  instance: instance, fromInDrain: fromInDrain)
    }

    /// A run that reached `draining` (FROM put in drain) under the harness's policy.
    static func draining() -> Harness {
        var h = Harness(testPolicy(steps: [100], bake: .seconds(2), gates: []))
        h.send(.liveWeights(reading(h, percent: 0)))
        h.start()
        h.send(.liveWeights(reading(h, percent: 100)))
        h.run(seconds: 3)
        h.send(.tick)
        precondition(h.state.phase == .draining, "\(h.state.phase)")
        return h
    }

    @Test("weights that read back as journaled change nothing and record nothing")
    func agreeingReading() {
        var h = Harness()
        h.send(.liveWeights(Self.reading(h, percent: 0)))
        h.start()
        let actions = h.send(.liveWeights(Self.reading(h, percent: 10)))
        #expect(actions.isEmpty)
        #expect(h.state.drift == nil)
        #expect(h.state.loadBalancer == Self.haproxy)
    }

    @Test("a restarted load balancer mid-bake: step 1's weights are written again and its bake restarts; no pause")
    func restartWhileShifting() {
        var h = Harness()
        h.send(.liveWeights(Self.reading(h, percent: 0)))
        h.start()
        h.advance(.seconds(4))
        let actions = h.send(.liveWeights(Self.reading(h, percent: 0, instance: Self.restarted)))
        #expect(actions.events(.weightsDrift).count == 1)
        #expect(actions.weightChanges.map(\.percent) == [10])
        #expect(actions.weightChanges.first?.step == 1)
        #expect(h.state.phase == .shifting)
        #expect(h.state.stepStartedAt == nil, "the bake restarts once the weights read back")
        h.verify(actions)
        #expect(h.state.stepStartedAt == h.now)
        let back = h.send(.liveWeights(Self.reading(h, percent: 10, instance: Self.restarted)))
        #expect(back.events(.weightsAsJournaled).count == 1)
        #expect(h.state.drift == nil)
    }

    @Test("weights changed by hand on the same instance mid-bake pause the run, saying so, once; resume writes them again")
    func handChangeWhileShifting() {
        var h = Harness()
        h.send(.liveWeights(Self.reading(h, percent: 0)))
        h.start()
        let actions = h.send(.liveWeights(Self.reading(h, percent: 0)))
        #expect(actions.weightChanges.isEmpty, "a person's change is not overridden")
        #expect(h.state.phase == .paused)
        #expect(h.state.reason?.contains("not by Switchover") == true, "\(h.state.reason ?? "")")
        #expect(h.state.reason?.contains("paused by command") == false)
        h.advance(.milliseconds(250))
        let again = h.send(.liveWeights(Self.reading(h, percent: 0)))
        #expect(again.isEmpty, "reported once per episode")
        let resumed = h.send(.command(.resume, id: 1))
        #expect(resumed.weightChanges.map(\.percent) == [10])
    }

    @Test("paused when the load balancer restarts: the paused step's weights are written again; the run stays paused")
    func restartWhilePaused() {
        var h = Harness()
        h.send(.liveWeights(Self.reading(h, percent: 0)))
        h.start()
        h.send(.command(.pause(reason: "look"), id: 1))
        let actions = h.send(.liveWeights(Self.reading(h, percent: 0, instance: Self.restarted)))
        #expect(actions.weightChanges.map(\.purpose) == [.reassert])
        #expect(actions.weightChanges.map(\.percent) == [10])
        h.verify(actions)
        #expect(h.state.phase == .paused)
        #expect(h.state.stepStartedAt == nil, "a paused step does not bake")
    }

    @Test("restart while draining: 100% to TO written again first, FROM put back in drain only once it reads back")
    func restartWhileDraining() {
        var h = Self.draining()
        let actions = h.send(.liveWeights(Self.reading(h, percent: 0, instance: Self.restarted, fromInDrain: false)))
        #expect(actions.weightChanges.map(\.percent) == [100])
        #expect(actions.weightChanges.map(\.purpose) == [.reassert])
        #expect(!actions.contains(.setDrain(cluster: "blue")), "never drain FROM before TO's weights read back")
        let verified = h.verify(actions)
        #expect(verified.contains(.setDrain(cluster: "blue")))
        #expect(verified.events(.weightsReasserted).count == 1)
    }

    @Test("a re-assert that fails is tried again, at most once a second, while the reading still differs")
    func reassertRetries() {
        var h = Self.draining()
        let first = h.send(.liveWeights(Self.reading(h, percent: 0, instance: Self.restarted, fromInDrain: false)))
        guard case .setWeights(let intent, _, _, _)? = first.first(where: { if case .setWeights = $0 { true } else { false } }) else {
            Issue.record("no re-assert"); return
        }
        h.send(.weightsApplied(intent: intent, result: .mismatch(detail: "socket closed")))
        h.advance(.milliseconds(250))
        #expect(h.send(.liveWeights(Self.reading(h, percent: 0, instance: Self.restarted, fromInDrain: false))).weightChanges.isEmpty)
        h.advance(.seconds(1))
        #expect(h.send(.liveWeights(Self.reading(h, percent: 0, instance: Self.restarted, fromInDrain: false))).weightChanges.map(\.percent) == [100])
    }

    @Test("weights changed by hand while draining are reported, not overridden, and blue is not drained again")
    func handChangeWhileDraining() {
        var h = Self.draining()
        let actions = h.send(.liveWeights(Self.reading(h, percent: 0, fromInDrain: false)))
        #expect(actions.weightChanges.isEmpty)
        #expect(!actions.contains(.setDrain(cluster: "blue")))
        #expect(actions.events(.weightsDrift).count == 1)
    }

    @Test("only FROM's drain state lost (weights as journaled): FROM is put in drain again")
    func drainStateLost() {
        var h = Self.draining()
        let actions = h.send(.liveWeights(Self.reading(h, percent: 100, fromInDrain: false)))
        #expect(actions.contains(.setDrain(cluster: "blue")))
        #expect(actions.weightChanges.isEmpty)
    }

    @Test("promoted with weights being written again: the drain starts only after they read back")
    func promotedWaitsForReassert() {
        var h = Harness(testPolicy(steps: [100], bake: .seconds(2), gates: []))
        h.send(.liveWeights(Self.reading(h, percent: 0)))
        h.start()
        while h.state.phase == .shifting {
            h.advance(.milliseconds(500))
            h.send(.tick)
        }
        #expect(h.state.phase == .promoted)
        let reassert = h.send(.liveWeights(Self.reading(h, percent: 0, instance: Self.restarted)))
        #expect(reassert.weightChanges.map(\.percent) == [100])
        let tick = h.send(.tick)
        #expect(!tick.contains(.setDrain(cluster: "blue")))
        #expect(h.state.phase == .promoted)
        h.verify(reassert)
        #expect(h.send(.tick).contains(.setDrain(cluster: "blue")))
    }

    @Test("resume of a drained run after a restart: recover writes TO's weights again before draining FROM")
    func recoverAfterRestart() {
        let h = Self.draining()
        let (_, actions) = h.engine.recover(h.state, live: Self.reading(h, percent: 0, instance: Self.restarted, fromInDrain: false),
                                            now: h.now)
        #expect(actions.weightChanges.map(\.percent) == [100])
        #expect(!actions.contains(.setDrain(cluster: "blue")))
    }

    @Test("decommission of a drained run on a reading older than the freshness window is refused; forced it is recorded")
    func decommissionNeedsFreshReading() {
        var h = Harness(testPolicy(steps: [100], bake: .seconds(2), gates: [],
                                   drain: DrainSpec(maxActiveSessions: 0, holdFor: .seconds(1), dnsTTL: .zero,
                                                    timeout: .seconds(600), forceAfter: nil)))
        h.start()
        h.run(seconds: 3)
        h.send(.tick)
        for _ in 0..<4 {
            h.advance(.milliseconds(500))
            h.send(.loadBalancerSample(sample(at: h.now, green: ClusterCounters(weight: 256), blue: ClusterCounters(weight: 0))))
        }
        #expect(h.state.phase == .drained)
        h.advance(.seconds(5))  // the load balancer stopped answering: no sample since
        let refused = h.send(.command(.decommission(force: false, reason: nil), id: 7))
        #expect(refused.acknowledgements.first?.accepted == false)
        #expect(refused.acknowledgements.first?.detail.contains("no fresh evidence") == true, "\(refused.acknowledgements)")
        #expect(h.state.phase == .drained)
        let forced = h.send(.command(.decommission(force: true, reason: "rebuilt anyway"), id: 8))
        #expect(forced.acknowledgements.first?.accepted == true)
        #expect(h.state.phase == .decommissioned)
    }

    @Test("decommission.requireApproval false: recorded as soon as FROM drains, on that sample; true (the default) waits for the command")
    func requireApprovalIsActedOn() {
        for requireApproval in [false, true] {
            var policy = testPolicy(steps: [100], bake: .seconds(2), gates: [],
                                    drain: DrainSpec(maxActiveSessions: 0, holdFor: .seconds(1), dnsTTL: .zero,
                                                     timeout: .seconds(600), forceAfter: nil))
            policy.decommission = DecommissionSpec(requireApproval: requireApproval)
            var h = Harness(policy)
            h.start()
            h.run(seconds: 3)
            h.send(.tick)
            for _ in 0..<4 {
                h.advance(.milliseconds(500))
                h.send(.loadBalancerSample(sample(at: h.now, green: ClusterCounters(weight: 256), blue: ClusterCounters(weight: 0))))
            }
            if requireApproval {
                #expect(h.state.phase == .drained)
            } else {
                #expect(h.state.phase == .decommissioned)
                #expect(h.log.events(.decommissioned).first?.evidence["reason"]?.contains("requireApproval is false") == true)
            }
        }
    }
}
