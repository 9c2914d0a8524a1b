import Foundation
import Testing
@testable import SwitchoverCore

@Suite("Cutover engine: steps, bakes and gates")
struct CutoverEngineStepTests {
    @Test("pending → preflight on the first tick; a passed preflight starts step 1")
    func preflightStartsTheFirstStep() {
        var h = Harness()
        let first = h.send(.tick)
        #expect(h.state.phase == .preflight)
        #expect(first.contains(.runPreflight))
        let second = h.send(.preflight(.passed))
        #expect(h.state.phase == .shifting)
        #expect(second.weightChanges.map(\.percent) == [10])
        #expect(second.weightChanges.map(\.step) == [1])
        #expect(h.state.pendingWeights != nil)
    }

    @Test("a failed preflight aborts with the failures and moves no weight")
    func failedPreflightAborts() {
        var h = Harness()
        h.send(.tick)
        let actions = h.send(.preflight(PreflightResult(failures: ["green health: connection refused"])))
        #expect(h.state.phase == .aborted)
        #expect(actions.weightChanges.isEmpty)
        #expect(h.state.reason?.contains("green health: connection refused") == true)
    }

    @Test("the bake starts when the weights read back, not when they were asked for")
    func bakeStartsAtVerification() {
        var h = Harness()
        h.send(.tick)
        let actions = h.send(.preflight(.passed))
        h.advance(.seconds(30)) // the load balancer is slow to answer
        #expect(h.state.stepStartedAt == nil)
        h.verify(actions)
        #expect(h.state.stepStartedAt == h.now)
        #expect(h.engine.bakeRemaining(h.state, now: h.now + .seconds(4)) == .seconds(6))
        // Passing gates for 9 s (less than the 10 s bake) does not advance.
        let early = h.run(seconds: 9, answering: .pass("ok"))
        #expect(early.weightChanges.isEmpty)
        #expect(h.state.step == 1)
        let onTime = h.run(seconds: 1, answering: .pass("ok"))
        #expect(onTime.weightChanges.map(\.percent) == [50])
        #expect(h.state.step == 2)
    }

    @Test("a healthy run goes through every step to promoted, then starts draining FROM")
    func healthyRunIsPromoted() {
        var h = Harness()
        h.start()
        let all = h.run(seconds: 40, answering: .pass("p99 0.1"))
        #expect(all.weightChanges.map(\.percent) == [50, 100])
        #expect(h.state.phase == .draining || h.state.phase == .promoted)
        #expect(all.events(.phaseChanged).contains { $0.phase == .promoted })
        #expect(all.contains(.setDrain(cluster: "blue")))
        #expect(h.state.phase == .draining)
        #expect(h.state.percentToTarget == 100)
    }

    @Test("a step without a pass from every gate does not advance, however long the bake")
    func everyGateMustPass() {
        var h = Harness(testPolicy(gates: [promGate("latency"), promGate("errors")]))
        h.start()
        var advanced = false
        for _ in 0..<30 {
            h.advance(.seconds(1))
            let actions = h.send(.tick)
            for case .evaluateGates(let evaluation, _) in actions {
                // Only "latency" ever answers pass; "errors" never answers.
                h.send(.gateResults(evaluation: evaluation, results: [GateResult(gate: "latency", outcome: .pass("ok"))]))
            }
            if !h.log.weightChanges.filter({ $0.step == 2 }).isEmpty { advanced = true }
        }
        #expect(!advanced)
        #expect(h.state.gatesWithoutPass == ["errors"])
    }

    @Test("inconclusive gates hold the step and are named; a pass after them lets it advance")
    func passAfterInconclusive() {
        var h = Harness()
        h.start()
        let held = h.run(seconds: 15, answering: .inconclusive("3 requests, fewer than 50"))
        #expect(held.weightChanges.isEmpty)
        #expect(h.state.step == 1)
        #expect(h.state.heldByInconclusiveGates == ["latency"])
        // Reported once, not once per tick.
        #expect(held.events(.gateHeld).count == 1)
        #expect(held.events(.gateHeld).first?.message.contains("held by inconclusive gates latency") == true)
        let after = h.run(seconds: 1, answering: .pass("enough traffic now"))
        #expect(after.weightChanges.map(\.percent) == [50])
        #expect(h.state.heldByInconclusiveGates.isEmpty)
    }

    @Test("a failure on the last step rolls back to 0% and names the gate")
    func failOnTheLastStep() {
        var h = Harness()
        h.start()
        h.run(seconds: 22, answering: .pass("ok"))
        #expect(h.state.step == 3)
        #expect(h.state.percentToTarget == 100)
        #expect(h.state.phase == .shifting)
        let first = h.run(seconds: 1, answering: .fail("p99 0.9 above 0.25", value: 0.9))
        #expect(first.weightChanges.isEmpty, "one failure is below the threshold of 2")
        let second = h.run(seconds: 1, answering: .fail("p99 0.9 above 0.25", value: 0.9))
        #expect(second.weightChanges.map(\.percent) == [0])
        #expect(second.weightChanges.map(\.purpose) == [.rollback])
        let rollback = second.events(.rollbackStarted)
        #expect(rollback.count == 1)
        #expect(rollback.first?.gate == "latency")
        #expect(rollback.first?.step == 3)
        #expect(h.state.phase == .rolledBack)
        #expect(h.state.rollbackVerified)
        #expect(h.state.percentToTarget == 0)
        #expect(second.events(.rollbackVerified).count == 1)
    }

    @Test("one failure below the threshold holds the step until the next evaluation passes")
    func failureBelowThresholdHolds() {
        var h = Harness(testPolicy(failureThreshold: 3))
        h.start()
        h.run(seconds: 8, answering: .pass("ok"))
        h.run(seconds: 1, answering: .fail("p99 0.4"))
        // The bake ends at this tick, and the gate has passed, but its latest evaluation failed.
        #expect(h.run(seconds: 1, answering: .fail("p99 0.4")).weightChanges.isEmpty, "latest evaluation failed")
        #expect(h.state.step == 1)
        #expect(h.state.phase == .shifting, "2 failures, threshold 3")
        #expect(h.run(seconds: 1, answering: .pass("ok")).weightChanges.map(\.percent) == [50])
    }

    @Test("failures over the threshold pause instead when automatic rollback is off")
    func manualRollbackPolicyPauses() {
        var h = Harness(testPolicy(automatic: false))
        h.start()
        let actions = h.run(seconds: 2, answering: .fail("too slow"))
        #expect(h.state.phase == .paused)
        #expect(actions.weightChanges.isEmpty)
        #expect(h.state.reason?.contains("gate latency failed 2 time(s)") == true)
    }

    @Test("errors never count as failures; enough in a row pause with the reason")
    func errorsPause() {
        var h = Harness(testPolicy(failureThreshold: 1, pauseAfterErrors: 3))
        h.start()
        h.run(seconds: 2, answering: .error("Prometheus: connection refused"))
        #expect(h.state.phase == .shifting, "two errors are below pauseAfterErrors")
        #expect(h.state.gates["latency"]?.failures == 0)
        // Another outcome resets the count.
        h.run(seconds: 1, answering: .inconclusive("no sample"))
        h.run(seconds: 2, answering: .error("Prometheus: connection refused"))
        #expect(h.state.phase == .shifting)
        let actions = h.run(seconds: 1, answering: .error("Prometheus: connection refused"))
        #expect(h.state.phase == .paused)
        #expect(actions.weightChanges.isEmpty, "a monitoring outage must not roll back")
        #expect(h.state.reason?.contains("latency could not be evaluated 3 times in a row: Prometheus: connection refused") == true)
        // Paused: no more evaluations, no advance, whatever the time.
        let later = h.run(seconds: 60, answering: .pass("ok"))
        #expect(later.weightChanges.isEmpty)
        #expect(!later.contains { if case .evaluateGates = $0 { return true } else { return false } })
    }

    @Test("resume re-applies the step's weights and restarts its bake")
    func resumeRestartsTheBake() {
        var h = Harness(testPolicy(pauseAfterErrors: 1))
        h.start()
        h.run(seconds: 8, answering: .pass("ok"))
        h.run(seconds: 1, answering: .error("down"))
        #expect(h.state.phase == .paused)
        let resume = h.send(.command(.resume, id: 7))
        #expect(resume.acknowledgements.first?.accepted == true)
        #expect(resume.weightChanges.map(\.percent) == [10])
        #expect(h.state.phase == .shifting)
        h.verify(resume)
        // 8 s of the earlier bake do not count: 9 s more is not enough.
        #expect(h.run(seconds: 9, answering: .pass("ok")).weightChanges.isEmpty)
        #expect(h.run(seconds: 1, answering: .pass("ok")).weightChanges.map(\.percent) == [50])
    }

    @Test("results of an evaluation from an earlier step are recorded as stale and change nothing")
    func staleResultsIgnored() {
        var h = Harness()
        h.start()
        h.advance(.seconds(1))
        let tick = h.send(.tick)
        guard case .evaluateGates(let evaluation, _)? = tick.first(where: { if case .evaluateGates = $0 { true } else { false } })
        else { Issue.record("no evaluation requested"); return }
        // Manual promote starts a new step before the answer comes back.
        h.verify(h.send(.command(.promote, id: nil)))
        let late = h.send(.gateResults(evaluation: evaluation, results: [GateResult(gate: "latency", outcome: .fail("x"))]))
        #expect(late.events(.staleResult).count == 1)
        #expect(h.state.gates["latency"]?.failures == 0)
    }

    @Test("weights that do not read back pause the run; a rollback that does not is retried")
    func weightMismatch() {
        var h = Harness()
        h.send(.tick)
        let first = h.send(.preflight(.passed))
        guard case .setWeights(let intent, _, _, _)? = first.last else { Issue.record("no setWeights"); return }
        h.send(.weightsApplied(intent: intent, result: .mismatch(detail: "blue-1 weight 200, expected 231")))
        #expect(h.state.phase == .paused)
        #expect(h.state.reason?.contains("not verified") == true)

        var r = Harness()
        r.start()
        let rollback = r.send(.command(.rollback(reason: nil), id: nil))
        guard case .setWeights(let rollbackIntent, _, _, _)? = rollback.first(where: {
            if case .setWeights = $0 { true } else { false } }) else { Issue.record("no rollback"); return }
        r.send(.weightsApplied(intent: rollbackIntent, result: .mismatch(detail: "socket timeout")))
        #expect(!r.state.rollbackVerified)
        r.advance(.milliseconds(250))
        let retry = r.send(.tick)
        #expect(retry.weightChanges.map(\.percent) == [0])
        r.verify(retry)
        #expect(r.state.rollbackVerified)
    }
}

@Suite("Cutover engine: load-balancer gates and the hard signal")
struct CutoverEngineSignalTests {
    /// Feeds a sample every 250 ms from `start` for `seconds`, green answering `perSample`
    /// responses of which `fivexx` are 5xx; ticks after each sample.
    static func feed(_ h: inout Harness, seconds: Double, perSample: Int64, fivexx: Int64, green: inout ClusterCounters) -> [Action] {
        var all: [Action] = []
        for _ in 0..<Int(seconds * 4) {
            h.advance(.milliseconds(250))
            green.responses += perSample
            green.responses5xx += fivexx
            green.responses2xx += perSample - fivexx
            var actions = h.send(.loadBalancerSample(sample(at: h.now, green: green)))
            actions += h.send(.tick)
            actions += h.verify(actions)
            all += actions
        }
        return all
    }

    @Test("a loadBalancer gate is judged from the samples: a healthy window passes, a bad one fails")
    func lbGateFromSamples() {
        var h = Harness(testPolicy(gates: [lbGate("green-errors")], hardSignal: nil))
        h.start()
        var green = ClusterCounters()
        let healthy = Self.feed(&h, seconds: 11, perSample: 30, fivexx: 0, green: &green)
        #expect(healthy.weightChanges.map(\.percent) == [50])
        let evaluations = healthy.events(.gateEvaluated).compactMap(\.outcome)
        #expect(evaluations.contains { $0.verdict == .pass })
        let bad = Self.feed(&h, seconds: 3, perSample: 30, fivexx: 3, green: &green)
        #expect(bad.weightChanges.map(\.percent) == [0])
        #expect(bad.events(.rollbackStarted).first?.gate == "green-errors")
    }

    @Test("the hard signal rolls back on the sample itself, in the middle of a bake, without a tick")
    func hardSignalDuringBake() {
        var h = Harness()
        h.start()
        var green = ClusterCounters(responses: 100, responses2xx: 100)
        h.advance(.seconds(3))
        h.send(.loadBalancerSample(sample(at: h.now, green: green)))
        h.advance(.milliseconds(250))
        green.responses += 40
        green.responses5xx += 12 // 30% > 20%, 40 ≥ 20 responses
        let actions = h.send(.loadBalancerSample(sample(at: h.now, green: green)))
        #expect(actions.weightChanges.map(\.percent) == [0])
        #expect(h.state.phase == .rolledBack)
        let signal = actions.events(.hardSignal)
        #expect(signal.count == 1)
        #expect(signal.first?.evidence["responses"] == "40")
    }

    @Test("the hard signal needs minRequests responses in the window")
    func hardSignalNeedsTraffic() {
        var h = Harness()
        h.start()
        var green = ClusterCounters()
        h.send(.loadBalancerSample(sample(at: h.now, green: green)))
        h.advance(.milliseconds(250))
        green.responses += 10
        green.responses5xx += 10 // 100% but only 10 < 20
        let actions = h.send(.loadBalancerSample(sample(at: h.now, green: green)))
        #expect(actions.weightChanges.isEmpty)
        #expect(h.state.phase == .shifting)
    }

    @Test("a load balancer restart (counters down) neither trips the hard signal nor passes a gate")
    func counterResetIsNotASignal() {
        var h = Harness(testPolicy(gates: [lbGate("green-errors", minRequests: 1)]))
        h.start()
        h.send(.loadBalancerSample(sample(at: h.now, green: ClusterCounters(responses: 10_000, responses5xx: 10))))
        h.advance(.seconds(1))
        let actions = h.send(.loadBalancerSample(sample(at: h.now, green: ClusterCounters(responses: 50, responses5xx: 40))))
        #expect(actions.weightChanges.isEmpty)
        let tick = h.send(.tick)
        let outcome = tick.events(.gateEvaluated).first?.outcome
        #expect(outcome?.verdict == .inconclusive)
        #expect(outcome?.detail.contains("counters went down") == true)
    }
}

@Suite("Cutover engine: manual commands")
struct CutoverEngineCommandTests {
    @Test("a manual rollback during a step returns all traffic to FROM at once")
    func manualRollbackDuringStep() {
        var h = Harness()
        h.start()
        h.run(seconds: 12, answering: .pass("ok"))
        #expect(h.state.step == 2)
        h.advance(.seconds(3))
        let actions = h.send(.command(.rollback(reason: "customer reports"), id: 42))
        #expect(actions.weightChanges.map(\.percent) == [0])
        #expect(actions.acknowledgements.first?.id == 42)
        #expect(actions.acknowledgements.first?.accepted == true)
        #expect(h.state.phase == .rolledBack)
        #expect(h.state.reason?.contains("customer reports") == true)
    }

    @Test("promote jumps to 100%; a failing gate during its bake still rolls back")
    func promoteThenFailingGate() {
        var h = Harness()
        h.start()
        h.run(seconds: 3, answering: .pass("ok"))
        let promote = h.send(.command(.promote, id: 1))
        #expect(promote.weightChanges.map(\.percent) == [100])
        #expect(promote.weightChanges.map(\.purpose) == [.promote])
        h.verify(promote)
        #expect(h.state.percentToTarget == 100)
        #expect(h.state.phase == .shifting)
        let actions = h.run(seconds: 2, answering: .fail("errors after promotion"))
        #expect(actions.weightChanges.map(\.percent) == [0])
        #expect(h.state.phase == .rolledBack)
    }

    @Test("promote with quiet gates ends promoted after one bake (inconclusive does not hold it)")
    func promoteCompletesOnBake() {
        var h = Harness()
        h.start()
        h.verify(h.send(.command(.promote, id: nil)))
        #expect(h.run(seconds: 9, answering: .inconclusive("quiet")).events(.phaseChanged).isEmpty)
        let done = h.run(seconds: 1, answering: .inconclusive("quiet"))
        #expect(done.events(.phaseChanged).contains { $0.phase == .promoted })
    }

    @Test("abort stops with the weights untouched; abort after promotion is refused")
    func abort() {
        var h = Harness()
        h.start()
        h.run(seconds: 12, answering: .pass("ok"))
        let percent = h.state.percentToTarget
        let actions = h.send(.command(.abort(reason: "change freeze"), id: 3))
        #expect(h.state.phase == .aborted)
        #expect(actions.weightChanges.isEmpty)
        #expect(h.state.percentToTarget == percent)
        #expect(h.run(seconds: 30, answering: .pass("ok")).weightChanges.isEmpty)
        // Abort leaves TO's share in place, so rollback is still possible.
        #expect(h.send(.command(.rollback(reason: nil), id: 4)).weightChanges.map(\.percent) == [0])

        var p = Harness()
        p.start()
        p.run(seconds: 40, answering: .pass("ok"))
        #expect(p.state.phase == .draining)
        let refused = p.send(.command(.abort(reason: nil), id: 5))
        #expect(refused.acknowledgements.first?.accepted == false)
        #expect(p.state.phase == .draining)
    }

    @Test("commands that make no sense in the phase are refused with why and change nothing",
          arguments: [
            ManualCommand.resume, .pause(reason: nil), .rollback(reason: nil), .decommission(force: false, reason: nil),
            .decommission(force: true, reason: "x"), .promote,
          ])
    func invalidCommandsRefused(command: ManualCommand) {
        var h = Harness()
        let before = h.state // pending: nothing has moved
        let actions = h.send(.command(command, id: 9))
        let ack = actions.acknowledgements
        #expect(ack.count == 1)
        #expect(ack.first?.accepted == false)
        #expect(ack.first?.detail.isEmpty == false)
        #expect(actions.weightChanges.isEmpty)
        #expect(h.state == before)
        #expect(actions.events(.commandRefused).count == 1)
    }

    @Test("pause holds a shifting run; resume while shifting is refused")
    func pauseAndRefusedResume() {
        var h = Harness()
        h.start()
        #expect(h.send(.command(.resume, id: 1)).acknowledgements.first?.accepted == false)
        #expect(h.send(.command(.pause(reason: "lunch"), id: 2)).acknowledgements.first?.accepted == true)
        #expect(h.state.phase == .paused)
        #expect(h.run(seconds: 30, answering: .pass("ok")).weightChanges.isEmpty)
        #expect(h.send(.command(.pause(reason: nil), id: 3)).acknowledgements.first?.accepted == false)
    }
}

@Suite("Cutover engine: crash recovery and journaling")
struct CutoverEngineRecoveryTests {
    @Test("recovery re-emits an unfinished weight change with the same intent")
    func recoverUnfinishedIntent() {
        var h = Harness()
        h.start()
        h.run(seconds: 10, answering: .pass("ok"), verifying: false)
        guard let pending = h.state.pendingWeights else { Issue.record("no pending weights"); return }
        let (state, actions) = h.engine.recover(h.state, now: h.now + .seconds(5))
        #expect(actions.contains(.setWeights(intent: pending.intent, percentToTarget: 50, step: 2, purpose: .step)))
        #expect(actions.weightChanges.count == 1)
        #expect(state.pendingWeights == pending)
    }

    @Test("recovery mid-bake re-applies the same step's weights and never advances")
    func recoverMidBake() throws {
        var h = Harness()
        h.start()
        h.run(seconds: 16, answering: .pass("ok")) // step 2, 6 s into its bake
        #expect(h.state.step == 2)
        let json = try JSONEncoder().encode(h.state)
        let restored = try JSONDecoder().decode(CutoverState.self, from: json)
        var r = Harness()
        r.state = restored
        r.now = h.now + .seconds(60)
        let (state, actions) = r.engine.recover(restored, now: r.now)
        r.state = state
        #expect(actions.weightChanges.map(\.percent) == [50])
        #expect(actions.weightChanges.map(\.step) == [2])
        #expect(state.stepStartedAt == nil)
        r.verify(actions)
        #expect(r.run(seconds: 9, answering: .pass("ok")).weightChanges.isEmpty, "the bake restarted")
        #expect(r.run(seconds: 1, answering: .pass("ok")).weightChanges.map(\.percent) == [100])
    }
}
