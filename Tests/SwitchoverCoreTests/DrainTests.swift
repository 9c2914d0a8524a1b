import Foundation
import Testing
@testable import SwitchoverCore

/// FROM's counters as the tests move them.
struct Blue {
    var weight = 0
    var active = 0
    var sessions: Int64 = 1_000
    var responses: Int64 = 5_000

    func sample(at: Instant) -> DrainSample {
        DrainSample(at: at, weight: weight, activeSessions: active, sessionsTotal: sessions, responses: responses)
    }
}

@Suite("Drain detector")
struct DrainDetectorTests {
    static let spec = DrainSpec(maxActiveSessions: 0, holdFor: .seconds(60), dnsTTL: .seconds(30),
                                timeout: .seconds(600), forceAfter: nil)

    @Test("drained only once weight 0, DNS TTL passed and then idle for holdFor")
    func drainedConditions() {
        let detector = DrainDetector(spec: Self.spec)
        var start = Instant.seconds(0)
        var state = detector.start(at: start)
        var blue = Blue(weight: 10, active: 0)
        // Idle but weight not 0: never drained.
        for _ in 0..<100 {
            start = start + .seconds(1)
            (state, _) = detector.observe(state, blue.sample(at: start))
        }
        #expect(state.status == .draining)
        #expect(state.reason.contains("live weight is 10"))
        blue.weight = 0
        let zeroAt = start + .seconds(1)
        var drainedAt: Instant?
        var t = zeroAt
        while t < zeroAt + .seconds(200) {
            let events: [DrainEvent]
            (state, events) = detector.observe(state, blue.sample(at: t))
            if drainedAt == nil, events.contains(where: { if case .becameDrained = $0 { true } else { false } }) {
                drainedAt = t
            }
            t = t + .seconds(1)
        }
        // Blue was idle long before its weight went 0, but the hold (60 s) counts only from the
        // end of the DNS TTL (30 s): drained exactly 30 + 60 s after the weight read back 0.
        #expect(drainedAt == zeroAt + .seconds(90))
        #expect(state.status == .drained)
    }

    @Test("a new request restarts the hold")
    func newRequestRestartsHold() {
        let detector = DrainDetector(spec: DrainSpec(maxActiveSessions: 0, holdFor: .seconds(60), dnsTTL: .zero,
                                                     timeout: .seconds(3600), forceAfter: nil))
        var now = Instant.seconds(0)
        var state = detector.start(at: now)
        var blue = Blue()
        for _ in 0..<50 {
            now = now + .seconds(1)
            (state, _) = detector.observe(state, blue.sample(at: now))
        }
        #expect(detector.holdProgress(state, now: now).heldMilliseconds == 49_000)
        // One request pinned to blue.
        now = now + .seconds(1)
        blue.responses += 1
        blue.sessions += 1
        (state, _) = detector.observe(state, blue.sample(at: now))
        #expect(detector.holdProgress(state, now: now).heldMilliseconds == 0)
        #expect(state.lastActivityAt == now)
        let requestAt = now
        var drainedAt: Instant?
        for _ in 0..<100 {
            now = now + .seconds(1)
            let events: [DrainEvent]
            (state, events) = detector.observe(state, blue.sample(at: now))
            if drainedAt == nil, !events.isEmpty { drainedAt = now }
        }
        #expect(drainedAt == requestAt + .seconds(60))
        let progress = detector.holdProgress(state, now: now)
        #expect(progress.fraction == 1)
    }

    @Test("open sessions above the maximum keep it draining; the timeout reports what is open, once")
    func timeoutSaysWhatIsOpen() {
        let detector = DrainDetector(spec: DrainSpec(maxActiveSessions: 0, holdFor: .seconds(10), dnsTTL: .zero,
                                                     timeout: .seconds(120), forceAfter: nil))
        var now = Instant.seconds(0)
        var state = detector.start(at: now)
        let blue = Blue(active: 3)
        var timeouts: [DrainEvent] = []
        for _ in 0..<300 {
            now = now + .seconds(1)
            let events: [DrainEvent]
            (state, events) = detector.observe(state, blue.sample(at: now))
            timeouts += events
        }
        #expect(timeouts.count == 1)
        guard case .timedOut(let reason, let active, _, let weight)? = timeouts.first else {
            Issue.record("expected a timeout, got \(timeouts)")
            return
        }
        #expect(active == 3)
        #expect(weight == 0)
        #expect(reason.contains("3 sessions open"))
        #expect(state.status == .timedOut)
    }

    @Test("forceAfter asks to close the remaining sessions once")
    func forceAfterOnce() {
        let detector = DrainDetector(spec: DrainSpec(maxActiveSessions: 0, holdFor: .seconds(10), dnsTTL: .zero,
                                                     timeout: .seconds(600), forceAfter: .seconds(60)))
        var now = Instant.seconds(0)
        var state = detector.start(at: now)
        let blue = Blue(active: 2)
        var forced: [Instant] = []
        for _ in 0..<200 {
            now = now + .seconds(1)
            let events: [DrainEvent]
            (state, events) = detector.observe(state, blue.sample(at: now))
            if events.contains(where: { if case .forceClose = $0 { true } else { false } }) { forced.append(now) }
        }
        #expect(forced == [Instant.seconds(60)])
    }

    @Test("the ETA converges on an exponential decay within 20% once half the sessions have gone")
    func etaConverges() {
        // 800 sessions decaying with a 90 s time constant, with ±4% deterministic noise; sampled
        // every 250 ms like the runtime does.
        let tau = 90.0
        let holdFor = 30.0
        let detector = DrainDetector(spec: DrainSpec(maxActiveSessions: 0, holdFor: .seconds(30), dnsTTL: .zero,
                                                     timeout: .seconds(7200), forceAfter: nil))
        let start = Instant.seconds(100)
        var state = detector.start(at: start)
        var noise: UInt64 = 12345
        func active(at t: Double) -> Int {
            noise = noise &* 6364136223846793005 &+ 1442695040888963407
            let jitter = 1 + (Double(noise >> 33) / Double(1 << 31) - 0.5) * 0.08
            return Int((800 * exp(-t / tau) * jitter).rounded())
        }
        // The true moment the last session goes (expected count below 0.5), plus the hold.
        let trueDrained = start.seconds + tau * log(800 / 0.5) + holdFor
        var checked = 0
        var t = 0.0
        let sessions: Int64 = 0
        while t < tau * log(800 / 0.5) - 30 {
            let now = start + .milliseconds(Int64(t * 1000))
            let count = active(at: t)
            // Closing sessions do not count as new ones.
            (state, _) = detector.observe(state, DrainSample(at: now, weight: 0, activeSessions: count,
                                                             sessionsTotal: sessions, responses: 0))
            if count <= 400 {
                guard case .at(let eta) = detector.eta(state, now: now) else {
                    Issue.record("no ETA at t=\(t) with \(count) sessions: \(detector.eta(state, now: now))")
                    return
                }
                let predictedRemaining = eta.seconds - now.seconds
                let trueRemaining = trueDrained - now.seconds
                #expect(abs(predictedRemaining - trueRemaining) <= 0.2 * trueRemaining,
                        "t=\(t): predicted \(predictedRemaining) s left, truly \(trueRemaining) s")
                checked += 1
            }
            t += 0.25
        }
        #expect(checked > 100)
    }

    @Test("ETA is unknown with too few points, without decay, or while the weight is not 0")
    func etaUnknown() {
        let detector = DrainDetector(spec: Self.spec)
        var state = detector.start(at: .seconds(0))
        (state, _) = detector.observe(state, Blue(weight: 5, active: 10).sample(at: .seconds(1)))
        guard case .unknown(let why) = detector.eta(state, now: .seconds(1)) else { Issue.record("expected unknown"); return }
        #expect(why.contains("not 0"))
        for second in 2...4 {
            (state, _) = detector.observe(state, Blue(weight: 0, active: 10).sample(at: .seconds(Double(second))))
        }
        guard case .unknown(let few) = detector.eta(state, now: .seconds(4)) else { Issue.record("expected unknown"); return }
        #expect(few.contains("at least 6"))
        for second in 5...20 {
            (state, _) = detector.observe(state, Blue(weight: 0, active: 10).sample(at: .seconds(Double(second))))
        }
        guard case .unknown(let flat) = detector.eta(state, now: .seconds(20)) else { Issue.record("expected unknown"); return }
        #expect(flat.contains("not decreasing"))
    }
}

@Suite("Cutover engine: drain, decommission, rollback after promotion")
struct CutoverEngineDrainTests {
    /// A run promoted and draining, with blue's first sample fed.
    static func draining(_ policy: Policy = testPolicy()) -> (Harness, Blue) {
        var h = Harness(policy)
        h.start()
        h.run(seconds: 31, answering: .pass("ok"))
        precondition(h.state.phase == .draining, "expected draining, got \(h.state.phase)")
        let blue = Blue(weight: 0, active: 2)
        h.send(.drainSample(blue.sample(at: h.now)))
        return (h, blue)
    }

    @discardableResult
    static func sampleEverySecond(_ h: inout Harness, _ blue: Blue, seconds: Int) -> [Action] {
        var all: [Action] = []
        for _ in 0..<seconds {
            h.advance(.seconds(1))
            all += h.send(.drainSample(blue.sample(at: h.now)))
        }
        return all
    }

    @Test("a record TTL of 60 s read from the router holds the drain's 10 s hold back until 60 s after weight 0, though the policy's dnsTTL is 0")
    func recordTTLFromTheRouter() {
        let policy = testPolicy(drain: DrainSpec(maxActiveSessions: 0, holdFor: .seconds(10), dnsTTL: .zero,
                                                 timeout: .seconds(600), forceAfter: nil))
        func drainedAfter(recordTTL: Duration?) -> (seconds: Int?, h: Harness) {
            var (h, blue) = Self.draining(policy)
            let zeroAt = h.now
            blue.active = 0
            for second in 1...90 {
                h.advance(.seconds(1))
                var sample = LoadBalancerSample(at: h.now, clusters: [
                    "blue": ClusterCounters(responses: blue.responses, sessionsTotal: blue.sessions, activeSessions: 0, weight: 0),
                    "green": ClusterCounters(responses: 100)])
                sample.recordTTL = recordTTL
                h.send(.loadBalancerSample(sample))
                if h.state.phase == .drained { return (Int((h.now - zeroAt).secondsValue), h) }
                if second == 59, recordTTL != nil {
                    let view = DrainView(state: h.state, policy: policy, now: h.now)
                    #expect(view?.dnsTTL == .seconds(60))
                    #expect(view?.dnsTTLRemaining == .seconds(1))
                    let reason = h.state.drain?.reason ?? ""
                    #expect(reason.contains("DNS TTL: 1s left"), "\(reason)")
                    #expect(reason.contains("the hold (10s) begins only after the DNS TTL"), "\(reason)")
                    #expect(h.engine.holdProgress(h.state, now: h.now)?.fraction == 0, "blue is idle, but the hold has not begun")
                }
                if second == 65, recordTTL != nil {
                    #expect(h.engine.holdProgress(h.state, now: h.now)?.fraction == 0.5, "5 s of the hold since the TTL ended")
                    #expect(h.state.drain?.reason.contains("idle for 5s of 10s since the DNS TTL ended") == true, "\(h.state.drain?.reason ?? "")")
                }
            }
            return (nil, h)
        }
        // Without a TTL from the router the 10 s hold decides.
        #expect(drainedAfter(recordTTL: nil).seconds == 11)
        let (seconds, h) = drainedAfter(recordTTL: .seconds(60))
        #expect(seconds == 70)
        let drained = h.state.drain?.reason ?? ""
        #expect(drained.contains("DNS TTL 60s passed (the record's, read from the load balancer; the policy's is 0s)"), "\(drained)")
    }

    @Test("a record TTL read from the router that, with the hold after it, cannot fit in the drain's timeout is said once when first read, and again only if it grows")
    func recordTTLLongerThanTheTimeoutIsSaid() {
        let policy = testPolicy(drain: DrainSpec(maxActiveSessions: 0, holdFor: .seconds(10), dnsTTL: .zero,
                                                 timeout: .seconds(65), forceAfter: nil))
        var (h, blue) = Self.draining(policy)
        blue.active = 0
        var actions: [Action] = []
        for (second, ttl) in [(1, 30), (2, 60), (3, 60), (4, 60), (5, 300)] {
            h.advance(.seconds(1))
            var sample = LoadBalancerSample(at: h.now, clusters: [
                "blue": ClusterCounters(responses: blue.responses, sessionsTotal: blue.sessions, activeSessions: 0, weight: 0),
                "green": ClusterCounters(responses: 100)])
            sample.recordTTL = .seconds(Int64(ttl))
            let sent = h.send(.loadBalancerSample(sample))
            actions += sent
            // 30 s + 10 s fits in 65 s: nothing said at the first sample.
            if second == 1 { #expect(sent.events(.drainProgress).isEmpty) }
        }
        let said = actions.events(.drainProgress)
        #expect(said.count == 2, "\(said.map(\.message))")
        #expect(said.first?.message.contains("blue's record TTL read from the load balancer is 60s: the DNS wait (60s) and then the hold (10s) "
                                             + "are not shorter than the drain's timeout (65s), so the drain will time out first") == true,
                "\(said.map(\.message))")
        #expect(said.last?.message.contains("is 300s") == true)
        #expect(actions.contains { if case .notify(let text) = $0 { text.contains("lower the record's TTL ahead of a switchover") } else { false } })
    }

    @Test("draining → drained through the detector, with the load balancer's samples of FROM")
    func drainedFromLoadBalancerSamples() {
        var (h, blue) = Self.draining()
        blue.active = 0
        var all: [Action] = []
        for _ in 0..<61 {
            h.advance(.seconds(1))
            all += h.send(.loadBalancerSample(LoadBalancerSample(at: h.now, clusters: [
                "blue": ClusterCounters(responses: blue.responses, sessionsTotal: blue.sessions, activeSessions: 0, weight: 0),
                "green": ClusterCounters(responses: 100)])))
        }
        #expect(h.state.phase == .drained)
        #expect(all.events(.drained).count == 1)
        #expect(h.engine.holdProgress(h.state, now: h.now)?.fraction == 1)
    }

    @Test("the load balancer stops answering: ticks alone never make FROM drained (nor decommission it), and a drained run goes back to draining")
    func noFreshReadingNoDrained() {
        for requireApproval in [true, false] {
            var policy = testPolicy()
            policy.decommission = DecommissionSpec(requireApproval: requireApproval)
            var (h, blue) = Self.draining(policy)
            blue.active = 0
            Self.sampleEverySecond(&h, blue, seconds: 10)
            // No sample after this one: the hold would be met by ticks on the last, old reading.
            for _ in 0..<120 {
                h.advance(.seconds(1))
                h.send(.tick)
                #expect(h.state.phase == .draining, "drained on no fresh reading at \(h.now)")
            }
            #expect(h.log.events(.drained).isEmpty && h.log.events(.decommissioned).isEmpty)
            #expect(h.state.phase == .draining, "never drained on a reading \(h.state.drain?.reason ?? "")")
            #expect(h.state.drain?.reason.contains("no fresh reading of FROM") == true, "\(h.state.drain?.reason ?? "")")
            // Samples again: drained once the hold is met on fresh ones.
            Self.sampleEverySecond(&h, blue, seconds: 61)
            #expect(h.state.phase == (requireApproval ? .drained : .decommissioned))
            if requireApproval {
                // Drained, then silence: it does not stay drained on a reading that ages.
                for _ in 0..<10 {
                    h.advance(.seconds(1))
                    h.send(.tick)
                }
                #expect(h.state.phase == .draining)
            }
        }
    }

    @Test("decommission before drained is refused with the evidence and changes nothing")
    func decommissionRefusedBeforeDrained() {
        var (h, blue) = Self.draining()
        Self.sampleEverySecond(&h, blue, seconds: 5)
        let before = h.state
        let actions = h.send(.command(.decommission(force: false, reason: nil), id: 11))
        #expect(h.state == before)
        let ack = actions.acknowledgements.first
        #expect(ack?.accepted == false)
        #expect(ack?.detail.contains("2 sessions open") == true)
        let refusal = actions.events(.commandRefused).first
        #expect(refusal?.evidence["activeSessions"] == "2")
        #expect(refusal?.evidence["liveWeight"] == "0")
        #expect(refusal?.evidence["lastRequestSeenAt"] != nil)
        // --force without a reason is refused too.
        let noReason = h.send(.command(.decommission(force: true, reason: "  "), id: 12))
        #expect(noReason.acknowledgements.first?.accepted == false)
        #expect(h.state == before)
        blue.active = 0
        _ = blue
    }

    @Test("decommission --force --reason records both, and the evidence at that moment")
    func decommissionForced() {
        var (h, _) = Self.draining()
        let actions = h.send(.command(.decommission(force: true, reason: "long polls from a batch job we own"), id: 13))
        #expect(h.state.phase == .decommissioned)
        let event = actions.events(.decommissioned).first
        #expect(event?.evidence["forced"] == "true")
        #expect(event?.evidence["reason"] == "long polls from a batch job we own")
        #expect(event?.evidence["activeSessions"] == "2")
    }

    @Test("decommission after drained is accepted without force")
    func decommissionAfterDrained() {
        var (h, blue) = Self.draining()
        blue.active = 0
        Self.sampleEverySecond(&h, blue, seconds: 61)
        #expect(h.state.phase == .drained)
        let actions = h.send(.command(.decommission(force: false, reason: nil), id: 14))
        #expect(actions.acknowledgements.first?.accepted == true)
        #expect(h.state.phase == .decommissioned)
    }

    @Test("activity after drained goes back to draining, and decommission is refused again")
    func activityAfterDrained() {
        var (h, blue) = Self.draining()
        blue.active = 0
        Self.sampleEverySecond(&h, blue, seconds: 61)
        #expect(h.state.phase == .drained)
        blue.responses += 3
        let actions = Self.sampleEverySecond(&h, blue, seconds: 1)
        #expect(h.state.phase == .draining)
        #expect(actions.events(.drainActivity).count == 1)
        #expect(h.send(.command(.decommission(force: false, reason: nil), id: 15)).acknowledgements.first?.accepted == false)
    }

    @Test("the drain timeout is reported with what is still open; the run keeps draining")
    func drainTimeout() {
        let policy = testPolicy(drain: DrainSpec(maxActiveSessions: 0, holdFor: .seconds(60), dnsTTL: .zero,
                                                 timeout: .seconds(120), forceAfter: .seconds(90)))
        var (h, blue) = Self.draining(policy)
        var all = Self.sampleEverySecond(&h, blue, seconds: 150)
        all += h.run(seconds: 5)
        #expect(h.state.phase == .draining)
        #expect(h.state.drain?.status == .timedOut)
        let timeout = all.events(.drainTimedOut)
        #expect(timeout.count == 1)
        #expect(timeout.first?.evidence["activeSessions"] == "2")
        #expect(timeout.first?.message.contains("2 sessions open") == true)
        #expect(all.filter { $0 == .forceCloseSessions(cluster: "blue") }.count == 1)
        #expect(all.events(.forceClose).count == 1)
        blue.active = 0
        _ = blue
    }

    @Test("rollback after promotion, during the drain, takes FROM out of drain and sends traffic back")
    func rollbackDuringDrain() {
        var (h, _) = Self.draining()
        let actions = h.send(.command(.rollback(reason: "green regression"), id: 16))
        #expect(actions.contains(.setReady(cluster: "blue")))
        #expect(actions.weightChanges.map(\.percent) == [0])
        #expect(h.state.phase == .rolledBack)
    }

    @Test("after decommission, rollback is refused with why and no input ever sends traffic to FROM")
    func nothingReachesFromAfterDecommission() {
        var (h, blue) = Self.draining()
        h.send(.command(.decommission(force: true, reason: "batch job"), id: 17))
        #expect(h.state.phase == .decommissioned)
        let rollback = h.send(.command(.rollback(reason: nil), id: 18))
        #expect(rollback.acknowledgements.first?.accepted == false)
        #expect(rollback.acknowledgements.first?.detail.contains("decommissioned") == true)
        var after: [Action] = rollback
        let commands: [ManualCommand] = [.rollback(reason: "again"), .resume, .promote, .abort(reason: nil),
                                         .pause(reason: nil), .decommission(force: true, reason: "x")]
        for command in commands { after += h.send(.command(command, id: 1)) }
        after += h.run(seconds: 100, answering: .fail("bad"))
        after += h.send(.preflight(.passed))
        after += h.send(.gateResults(evaluation: 999, results: [GateResult(gate: "latency", outcome: .fail("x"))]))
        after += h.send(.weightsApplied(intent: 999, result: .verified(percentToTarget: 0)))
        blue.responses += 10
        after += Self.sampleEverySecond(&h, blue, seconds: 5)
        after += h.send(.loadBalancerSample(sample(at: h.now, green: ClusterCounters(responses: 1_000_000, responses5xx: 900_000))))
        #expect(after.weightChanges.isEmpty)
        #expect(!after.contains { if case .setReady = $0 { true } else { false } })
        #expect(h.state.phase == .decommissioned)
        #expect(after.acknowledgements.allSatisfy { !$0.accepted })
    }
}
