import Foundation
import SwitchoverCore
import SwitchoverReport
import SwitchoverStore
import SwitchoverTestKit

/// Writes a journal the way the runtime does during a run (engine events through the journal's
/// typed helpers, write-ahead intents around weight changes, gate evaluations, one load-balancer
/// sample per `sampling`, the trust report at preflight, the engine state at the end), with a
/// simulated clock and simulated traffic: `requestsPerSecond` split by weight, 5xx where the
/// scenario says, and FROM's sessions decaying while it drains.
final class RecordedRun {
    let journal: any JournalStore
    let from: String
    let to: String
    let run: Int64
    let start: Instant
    private(set) var now: Instant
    var sampling: Duration = .seconds(1)
    var requestsPerSecond = 200.0
    /// Fraction of TO's responses that are 5xx.
    var toErrorRatio = 0.0
    private(set) var percentToTarget = 0.0
    private var counters: [String: ClusterCounters]
    private(set) var fromSessions = 40
    private(set) var sampleCount = 0
    var state = CutoverState.initial
    /// Pause the traffic (e.g. the load balancer restarted): counters start again from 0.
    var restartLoadBalancerAt: Instant?

    init(journal: any JournalStore, from: String = "blue", to: String = "green", policy: String = "demo",
         start: Instant = Instant(millisecondsSinceEpoch: 1_800_000_000_000)) throws {
        self.journal = journal
        self.from = from
        self.to = to
        self.start = start
        now = start
        run = try journal.startRun(RunRecord(from: from, to: to, policy: policy, startedAt: start, pid: 4242))
        counters = [from: ClusterCounters(weight: 100), to: ClusterCounters(weight: 0)]
    }

    func event(_ event: EngineEvent) throws {
        try journal.append(run: run, at: now, event)
    }

    func phase(_ to: Phase, _ reason: String) throws {
        let old = state.phase
        state.phase = to
        try event(EngineEvent(.phaseChanged, "\(old.rawValue) → \(to.rawValue): \(reason)", phase: to, step: state.step,
                              evidence: ["from": old.rawValue, "to": to.rawValue]))
    }

    func trust(_ json: String) throws {
        try journal.append(JournalEvent(run: run, at: now, kind: ReportData.trustEventKind, detail: json))
    }

    /// Advances the clock by `duration`, sampling the load balancer every `sampling`.
    func advance(_ duration: Duration) throws {
        let end = now + duration
        while now + sampling <= end {
            now = now + sampling
            try sample()
        }
        now = end
    }

    private func sample() throws {
        let seconds = sampling.secondsValue
        if let restart = restartLoadBalancerAt, now >= restart {
            restartLoadBalancerAt = nil
            for key in counters.keys {
                counters[key] = ClusterCounters(weight: counters[key]!.weight)
            }
        }
        let toShare = percentToTarget / 100
        for (cluster, share) in [(from, 1 - toShare), (to, toShare)] {
            var c = counters[cluster]!
            // A little deterministic wobble so the lines look like traffic.
            let wobble = 1 + 0.06 * sin(Double(sampleCount) / 3 + (cluster == from ? 0 : 1.7))
            let responses = Int64((requestsPerSecond * share * seconds * wobble).rounded())
            let errors = cluster == to ? Int64((Double(responses) * toErrorRatio).rounded()) : 0
            c.responses += responses
            c.responses5xx += errors
            c.responses2xx += responses - errors
            c.sessionsTotal += responses
            c.activeSessions = Int((Double(responses) / seconds * 0.4).rounded())
            if cluster == from {
                // At weight 0 no new session reaches FROM; the keep-alive ones close one by one.
                if c.weight > 0 {
                    fromSessions = c.activeSessions
                } else {
                    fromSessions = max(0, fromSessions - Int.random(in: 0...2, using: &generator))
                    c.activeSessions = fromSessions
                }
            }
            counters[cluster] = c
        }
        sampleCount += 1
        try journal.recordSample(run: run, LoadBalancerSample(at: now, clusters: counters))
    }

    private var generator = SeededGenerator(seed: 7)

    /// The write-ahead pair around a weight change, the read-back, and the engine's event.
    func setWeights(_ percent: Double, step: Int, purpose: WeightsPurpose) throws {
        state.lastIntent += 1
        let action = Action.setWeights(intent: state.lastIntent, percentToTarget: percent, step: step, purpose: purpose)
        let intent = try journal.beginIntent(run: run, at: now, action)
        now = now + .milliseconds(180)
        percentToTarget = percent
        counters[from]!.weight = Int((100 - percent).rounded())
        counters[to]!.weight = Int(percent.rounded())
        // What the runtime's `WeightsResultDetail` looks like: the share read back and each server's weight.
        let toWeight = Int((percent * 2.56).rounded()), fromWeight = 256 - Int((percent * 2.56).rounded())
        try journal.finishIntent(intent, at: now, ok: true,
                                 detail: "{\"percentToTarget\":\(percent),\"servers\":{\"\(from)-1\":\(fromWeight),\"\(to)-1\":\(toWeight)}}")
        state.percentToTarget = percent
        state.step = step
    }

    func gate(_ name: String, _ outcome: GateOutcome) throws {
        let event = EngineEvent(.gateEvaluated, "\(name): \(outcome.verdict.rawValue): \(outcome.detail)", phase: state.phase,
                                step: state.step, gate: name, outcome: outcome)
        try self.event(event)
        try journal.recordGateEvaluation(run: run, at: now, event)
    }

    func saveState() throws {
        try journal.saveState(run: run, at: now, state)
    }

    /// A healthy cutover: trust, four steps with gates every 5 s (an inconclusive one at the
    /// first evaluation, a manual pause in step 2, a load-balancer restart in step 3), promotion,
    /// a drain with a 10 s hold, drained.
    static func healthy(_ journal: any JournalStore, from: String = "blue", to: String = "green",
                        trustJSON: String? = sampleTrustJSON(from: "blue", to: "green")) throws -> RecordedRun {
        let r = try RecordedRun(journal: journal, from: from, to: to)
        try r.phase(.preflight, "run started")
        if let trustJSON { try r.trust(trustJSON) }
        try r.advance(.seconds(3))
        try r.phase(.shifting, "preflight passed")
        let steps = [10.0, 25, 50, 100]
        for (index, percent) in steps.enumerated() {
            let step = index + 1
            try r.event(EngineEvent(.stepStarted, "step \(step) of \(steps.count): \(percent)% to \(to)", phase: .shifting, step: step))
            try r.setWeights(percent, step: step, purpose: .step)
            try r.event(EngineEvent(.stepVerified, "step \(step) weights read back: \(percent)% to \(to)", phase: .shifting,
                                    step: step, evidence: ["percentToTarget": "\(percent)"]))
            if step == 3 { r.restartLoadBalancerAt = r.now + .seconds(7) }
            for evaluation in 1...4 {
                try r.advance(.seconds(5))
                if step == 1 && evaluation == 1 {
                    try r.gate("\(to)-5xx", .inconclusive("\(to): 9 responses in the window, fewer than 20", value: 9))
                } else {
                    try r.gate("\(to)-5xx", .pass("\(to): 5xx ratio 0.0 over 250 responses", value: 0))
                }
                try r.gate("p99-latency", .pass("0.18 ≤ 0.5", value: 0.18))
                if step == 2 && evaluation == 2 {
                    try r.event(EngineEvent(.paused, "paused by alice: checking dashboards", phase: .paused, step: step))
                    try r.phase(.paused, "paused by alice")
                    try r.advance(.seconds(8))
                    try r.event(EngineEvent(.resumed, "resumed at step 2; the bake restarts once its weights read back",
                                            phase: .shifting, step: step))
                    try r.phase(.shifting, "resumed")
                }
            }
            try r.event(EngineEvent(.stepCompleted, "step \(step) baked 20s with every gate passing", phase: .shifting, step: step))
        }
        try r.phase(.promoted, "all traffic on \(to)")
        r.state.promotedAt = r.now
        try r.advance(.seconds(2))
        let intent = try journal.beginIntent(run: r.run, at: r.now, Action.setDrain(cluster: from))
        try journal.finishIntent(intent, at: r.now + .milliseconds(50), ok: true, detail: "drain set")
        try r.phase(.draining, "\(from) put in drain")
        var drain = DrainState(startedAt: r.now)
        drain.weightZeroSince = r.now
        // Idle from the first sample with no session left; drained after a 10 s hold.
        while r.fromSessions > 0 { try r.advance(r.sampling) }
        drain.idleSince = r.now
        try r.advance(.seconds(10))
        drain.status = .drained
        drain.reason = "no new session or request for 10s (hold 10s), DNS TTL 5s passed"
        r.state.drain = drain
        try r.event(EngineEvent(.drained, drain.reason, phase: .drained,
                                evidence: ["activeSessions": "0", "holdMilliseconds": "10000/10000", "liveWeight": "0"]))
        try r.phase(.drained, drain.reason)
        try r.advance(.seconds(3))
        try r.saveState()
        return r
    }

    /// A cutover where TO starts answering 503 at step 2: the 5xx gate fails twice and the run
    /// rolls back; the rollback's weights read back 1.2 s later.
    static func rolledBack(_ journal: any JournalStore, from: String = "blue", to: String = "green") throws -> RecordedRun {
        let r = try RecordedRun(journal: journal, from: from, to: to)
        try r.phase(.preflight, "run started")
        try r.trust(sampleTrustJSON(from: from, to: to))
        try r.advance(.seconds(2))
        try r.phase(.shifting, "preflight passed")
        for (step, percent) in [(1, 10.0), (2, 25.0)] {
            try r.event(EngineEvent(.stepStarted, "step \(step) of 4: \(percent)% to \(to)", phase: .shifting, step: step))
            try r.setWeights(percent, step: step, purpose: .step)
            try r.event(EngineEvent(.stepVerified, "step \(step) weights read back: \(percent)% to \(to)", phase: .shifting,
                                    step: step, evidence: ["percentToTarget": "\(percent)"]))
            if step == 1 {
                for _ in 1...4 {
                    try r.advance(.seconds(5))
                    try r.gate("\(to)-5xx", .pass("\(to): 5xx ratio 0.0 over 100 responses", value: 0))
                }
                try r.event(EngineEvent(.stepCompleted, "step 1 baked 20s with every gate passing", phase: .shifting, step: 1))
            } else {
                try r.advance(.seconds(4))
                r.toErrorRatio = 0.4
                try r.advance(.seconds(5))
                try r.gate("\(to)-5xx", .fail("\(to): 5xx ratio 0.4 above 0.01 over 250 responses", value: 0.4))
                try r.advance(.seconds(5))
                try r.gate("\(to)-5xx", .fail("\(to): 5xx ratio 0.41 above 0.01 over 248 responses", value: 0.41))
            }
        }
        try r.event(EngineEvent(.rollbackStarted, "gate \(to)-5xx failed 2 times in step 2", phase: .rolledBack, step: 2,
                                gate: "\(to)-5xx", evidence: ["fromPhase": "shifting", "percentToTarget": "25.0"]))
        try r.phase(.rolledBack, "gate \(to)-5xx failed 2 times in step 2")
        let rollbackAt = r.now
        try r.setWeights(0, step: 0, purpose: .rollback)
        r.now = rollbackAt + .milliseconds(1200)
        try r.event(EngineEvent(.rollbackVerified, "all traffic back on \(from), read back from the load balancer",
                                phase: .rolledBack, evidence: ["percentToTarget": "0.0"]))
        try r.advance(.seconds(10))
        r.state.reason = "gate \(to)-5xx failed 2 times in step 2"
        try r.saveState()
        return r
    }

    /// The trust report JSON as SwitchoverTrust encodes it (the DESIGN.md contract).
    static func sampleTrustJSON(from: String, to: String, trusted: Bool = true) -> String {
        let root = "3f9a0c4e8b7d1f2a6c5e4d3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a2918070"
        let object: [String: Any] = [
            "from": from, "to": to, "trusted": trusted, "checkedAt": "2027-01-15T08:00:00Z",
            "checks": [
                ["name": "trustDomain", "status": "pass", "detail": "both clusters use cluster.local"],
                ["name": "roots.shared", "status": trusted ? "pass" : "fail",
                 "detail": trusted ? "1 root in common (SHA-256 3F:9A:…:70)" : "no root in common"],
                ["name": "chain.\(from)-verifies-against-\(to)", "status": "pass", "detail": "the intermediate of \(from) verifies against the roots of \(to)"],
                ["name": "chain.\(to)-verifies-against-\(from)", "status": "pass", "detail": "the intermediate of \(to) verifies against the roots of \(from)"],
                ["name": "validity.\(to).roots", "status": "warn", "detail": "root expires in 21 days (2027-02-05), within the 30-day horizon"],
            ],
            "clusters": [
                from: ["trustDomain": "cluster.local", "roots": [["sha256": root, "subject": "CN=Demo Root CA, O=Switchover", "notAfter": "2027-02-05T00:00:00Z"]],
                       "chain": []],
                to: ["trustDomain": "cluster.local", "roots": [["sha256": root, "subject": "CN=Demo Root CA, O=Switchover", "notAfter": "2027-02-05T00:00:00Z"]],
                     "chain": []],
            ],
        ]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
