import Foundation
@testable import SwitchoverCore
import SwitchoverDrivers

/// Builds policies for engine tests: every field explicit where a test depends on it.
func testPolicy(steps: [Double] = [10, 50, 100], bake: Duration = .seconds(10), interval: Duration = .seconds(1),
                failureThreshold: Int = 2, pauseAfterErrors: Int = 3, gates: [Gate]? = nil, automatic: Bool = true,
                hardSignal: HardSignal? = HardSignal(max5xxRatio: 0.2, minRequests: 20),
                drain: DrainSpec = DrainSpec(maxActiveSessions: 0, holdFor: .seconds(60), dnsTTL: .seconds(0),
                                             timeout: .seconds(3600), forceAfter: nil)) -> Policy {
    let location = SourceLocation(file: "policies/test.yaml", line: 1, column: 1)
    return Policy(
        name: "test",
        loadBalancer: .haproxy(HAProxySpec(socket: "/tmp/none.sock", backend: "app")),
        steps: steps, bake: bake, interval: interval, failureThreshold: failureThreshold,
        pauseAfterErrors: pauseAfterErrors,
        gates: gates ?? [promGate("latency")],
        rollback: RollbackSpec(automatic: automatic, hardSignal: hardSignal),
        drain: drain, decommission: DecommissionSpec(requireApproval: true), location: location)
}

func promGate(_ name: String, max: Double = 0.25) -> Gate {
    Gate(name: name, source: .prometheus(PrometheusGate(url: URL(string: "http://127.0.0.1:9090")!, query: "q",
                                                        min: nil, max: max)),
         location: SourceLocation(file: "policies/test.yaml", line: 10, column: 5))
}

func lbGate(_ name: String, cluster: String = "green", maxRatio: Double = 0.01, minRequests: Int = 50) -> Gate {
    Gate(name: name, source: .loadBalancer(LoadBalancerGate(cluster: cluster, max5xxRatio: maxRatio,
                                                            minRequests: minRequests, maxMeanResponseTime: nil)),
         location: SourceLocation(file: "policies/test.yaml", line: 12, column: 5))
}

/// Drives a `CutoverEngine` with a manual clock and keeps every action it returned.
struct Harness {
    let engine: CutoverEngine
    var state = CutoverState.initial
    var now = Instant.seconds(1_000)
    /// Every action so far, oldest first.
    var log: [Action] = []

    init(_ policy: Policy = testPolicy()) {
        engine = CutoverEngine(policy: policy, from: "blue", to: "green")
    }

    @discardableResult
    mutating func send(_ input: EngineInput) -> [Action] {
        let (next, actions) = engine.next(state, input, now: now)
        // Every state the runtime would journal must survive JSON.
        let data = try! JSONEncoder().encode(next)
        let decoded = try! JSONDecoder().decode(CutoverState.self, from: data)
        precondition(decoded == next, "state does not round-trip through JSON")
        state = next
        log += actions
        return actions
    }

    mutating func advance(_ duration: Duration) {
        now = now + duration
    }

    /// Ticks once per second for `seconds` seconds, answering evaluations with `outcome`
    /// (nil: leave them unanswered) and reading back weight changes as applied (unless
    /// `verifying` is false). Returns every action.
    @discardableResult
    mutating func run(seconds: Int, answering outcome: GateOutcome? = nil, verifying: Bool = true) -> [Action] {
        var all: [Action] = []
        for _ in 0..<seconds {
            advance(.seconds(1))
            var actions = send(.tick)
            if let outcome { actions += answer(actions, with: outcome) }
            if verifying { actions += verify(actions) }
            all += actions
        }
        return all
    }

    /// Answers every `evaluateGates` among `actions` with `outcome` for each gate it names.
    @discardableResult
    mutating func answer(_ actions: [Action], with outcome: GateOutcome) -> [Action] {
        var all: [Action] = []
        for case .evaluateGates(let evaluation, let gates) in actions {
            all += send(.gateResults(evaluation: evaluation, results: gates.map { GateResult(gate: $0, outcome: outcome) }))
        }
        return all
    }

    /// Reads back every `setWeights` among `actions` as applied.
    @discardableResult
    mutating func verify(_ actions: [Action]) -> [Action] {
        var all: [Action] = []
        for case .setWeights(let intent, let percent, _, _) in actions {
            all += send(.weightsApplied(intent: intent, result: .verified(percentToTarget: percent)))
        }
        return all
    }

    /// From pending to step 1 verified (bake running).
    mutating func start() {
        send(.tick)
        let actions = send(.preflight(.passed))
        verify(actions)
    }
}

extension Array where Element == Action {
    var weightChanges: [(percent: Double, step: Int, purpose: WeightsPurpose)] {
        compactMap {
            if case .setWeights(_, let percent, let step, let purpose) = $0 { return (percent, step, purpose) }
            return nil
        }
    }

    var events: [EngineEvent] {
        compactMap {
            if case .record(let event) = $0 { return event }
            return nil
        }
    }

    func events(_ kind: EngineEvent.Kind) -> [EngineEvent] { events.filter { $0.kind == kind } }

    var acknowledgements: [(id: Int64, accepted: Bool, detail: String)] {
        compactMap {
            if case .acknowledge(let id, let accepted, let detail) = $0 { return (id, accepted, detail) }
            return nil
        }
    }
}

/// A load-balancer sample with cumulative counters for green (TO) and blue (FROM).
func sample(at: Instant, green: ClusterCounters, blue: ClusterCounters = ClusterCounters()) -> LoadBalancerSample {
    LoadBalancerSample(at: at, clusters: ["green": green, "blue": blue])
}
