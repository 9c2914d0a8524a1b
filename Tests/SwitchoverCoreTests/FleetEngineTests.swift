import Foundation
import Testing
@testable import SwitchoverCore
import SwitchoverDrivers

/// A policy over three services on two HAProxy instances, built in code.
func fleetPolicy(steps: [Double] = [10, 50, 100], waves: [[String]]? = [["cart"], ["checkout", "search"]],
                 gates: [Gate] = [], hardSignal: HardSignal? = HardSignal(max5xxRatio: 0.2, minRequests: 20)) -> Policy {
    let spec = HAProxySpec(instances: [HAProxyInstance(name: "lb-a", socket: "/tmp/a.sock"),
                                       HAProxyInstance(name: "lb-b", socket: "/tmp/b.sock")],
                           backends: [ServiceBackend(service: "cart", backend: "be_cart"),
                                      ServiceBackend(service: "checkout", backend: "be_checkout"),
                                      ServiceBackend(service: "search", backend: "be_search")])
    var policy = testPolicy(steps: steps, gates: gates, hardSignal: hardSignal)
    policy = Policy(name: "fleet", loadBalancer: .haproxy(spec), steps: steps, bake: policy.bake, interval: policy.interval,
                    failureThreshold: 1, gates: gates, rollback: policy.rollback, drain: policy.drain,
                    decommission: policy.decommission, location: policy.location)
    policy.waves = waves
    return policy
}

@Suite("Step schedule: waves walk every step, one after the other")
struct StepScheduleTests {
    @Test("with waves [[cart], [checkout, search]], cart reaches 100% before the others move, and stays there")
    func wavesInOrder() {
        let schedule = StepSchedule(policy: fleetPolicy())
        #expect(schedule.count == 6)
        #expect(schedule.percents(atStep: 0) == ["cart": 0, "checkout": 0, "search": 0])
        #expect(schedule.percents(atStep: 1) == ["cart": 10, "checkout": 0, "search": 0])
        #expect(schedule.percents(atStep: 3) == ["cart": 100, "checkout": 0, "search": 0])
        #expect(schedule.percents(atStep: 4) == ["cart": 100, "checkout": 10, "search": 10])
        #expect(schedule.percents(atStep: 6) == ["cart": 100, "checkout": 100, "search": 100])
        #expect(schedule.moving(atStep: 2) == ["cart"])
        #expect(schedule.moving(atStep: 5) == ["cart", "checkout", "search"])
        // The one number grows with every step, so a journaled number names one step.
        let numbers = (0...6).map(schedule.percent(atStep:))
        #expect(numbers == numbers.sorted() && Set(numbers).count == numbers.count)
        #expect(schedule.percent(atStep: 6) == 100)
        #expect(schedule.describe(step: 4) == "wave 2 of 2 (checkout, search) at 10%")
    }

    @Test("without waves every service is at the policy's percentage, and the one number is it")
    func oneWave() {
        let schedule = StepSchedule(policy: fleetPolicy(waves: nil))
        #expect(schedule.count == 3)
        #expect(schedule.percents(atStep: 2) == ["cart": 50, "checkout": 50, "search": 50])
        #expect(schedule.percent(atStep: 2) == 50)
        #expect(schedule.describe(step: 2) == nil)
    }
}

@Suite("Cutover engine: many services")
struct FleetEngineTests {
    /// Counters of one cluster with `responses` answered, `fivexx` of them 5xx.
    static func counters(_ responses: Int64, _ fivexx: Int64) -> ClusterCounters {
        ClusterCounters(responses: responses, responses2xx: responses - fivexx, responses5xx: fivexx, sessionsTotal: responses,
                        activeSessions: 0, weight: 1, responseTimeTotalMilliseconds: nil, responseTimeAverageMilliseconds: nil)
    }

    static func fleetSample(at: Instant, cart: (Int64, Int64), checkout: (Int64, Int64) = (0, 0)) -> LoadBalancerSample {
        let services = ["cart": ["green": counters(cart.0, cart.1), "blue": counters(0, 0)],
                        "checkout": ["green": counters(checkout.0, checkout.1), "blue": counters(0, 0)],
                        "search": ["green": counters(0, 0), "blue": counters(0, 0)]]
        let total = counters(cart.0 + checkout.0, cart.1 + checkout.1)
        return LoadBalancerSample(at: at, clusters: ["green": total, "blue": counters(0, 0)], services: services)
    }

    @Test("a healthy run walks both waves, step by step, and each step's event names the services' percentages")
    func walksWaves() {
        var h = Harness(fleetPolicy())
        h.start()
        let all = h.run(seconds: 80, answering: .pass("ok"))
        #expect(h.state.promotedAt != nil)
        let steps = ([Action]() + h.log).weightChanges.map(\.step)
        #expect(steps == [1, 2, 3, 4, 5, 6])
        let started = h.log.events(.stepStarted)
        #expect(started.count == 6)
        #expect(started[3].evidence["services"] == "cart=100 checkout=10 search=10")
        #expect(started[3].message.contains("wave 2 of 2 (checkout, search) at 10%"))
        _ = all
    }

    @Test("the hard signal judges each service: 5xx in one service among healthy ones rolls everything back")
    func hardSignalPerService() {
        var h = Harness(fleetPolicy(waves: nil))
        h.start()
        // Checkout fails half its requests, cart answers ten times as many without error: the
        // sum (5%) is under the 20% limit, checkout alone (50%) is over it.
        h.send(.loadBalancerSample(Self.fleetSample(at: h.now, cart: (0, 0))))
        h.advance(.milliseconds(250))
        let actions = h.send(.loadBalancerSample(Self.fleetSample(at: h.now, cart: (1000, 0), checkout: (100, 50))))
        #expect(h.state.phase == .rolledBack)
        let signal = actions.events(.hardSignal).first
        #expect(signal?.evidence["service"] == "checkout")
        #expect(actions.weightChanges.map(\.step) == [0])
    }

    @Test("a gate naming a service of a later wave waits for that wave; one naming none judges each moving service")
    func gatesPerService() {
        let checkoutGate = Gate(name: "checkout-errors", source: .loadBalancer(LoadBalancerGate(
            cluster: "green", service: "checkout", max5xxRatio: 0.1, minRequests: 10, maxMeanResponseTime: nil)),
            location: SourceLocation(file: "p.yaml", line: 1, column: 1))
        var h = Harness(fleetPolicy(gates: [checkoutGate, lbGate("errors", maxRatio: 0.1, minRequests: 10)]))
        h.start()
        #expect(Set(h.state.gates.keys) == ["errors"])
        h.send(.loadBalancerSample(Self.fleetSample(at: h.now, cart: (0, 0))))
        h.advance(.seconds(1))
        h.send(.loadBalancerSample(Self.fleetSample(at: h.now, cart: (100, 50))))
        h.send(.tick)
        #expect(h.state.phase == .rolledBack)
        #expect(h.state.reason?.contains("service cart") == true)
    }

    @Test("weights that do not read back pause the run without a rollback, are retried, and the bake resumes once they read back")
    func loadBalancerFaultIsRetried() {
        var h = Harness(fleetPolicy())
        h.start()
        h.run(seconds: 12, answering: .pass("ok"), verifying: false)
        let step2 = h.log.weightChanges.last!
        #expect(step2.step == 2)
        guard case .setWeights(let intent, _, _, _)? = h.log.last(where: { if case .setWeights = $0 { true } else { false } }) else {
            Issue.record("no setWeights"); return
        }
        h.send(.weightsApplied(intent: intent, result: .mismatch(detail: "lb-b (service cart): unreachable")))
        #expect(h.state.phase == .paused)
        #expect(h.state.reason?.contains("lb-b") == true)
        #expect(h.state.reason?.contains("no rollback") == true)
        // Retried every second while it still fails: the same step, never a rollback.
        for _ in 0..<3 {
            h.advance(.seconds(1))
            let retry = h.send(.tick)
            #expect(retry.weightChanges.map(\.step) == [2])
            guard case .setWeights(let again, _, _, _)? = retry.first else { Issue.record("no retry"); return }
            h.send(.weightsApplied(intent: again, result: .mismatch(detail: "lb-b (service cart): unreachable")))
            #expect(h.state.phase == .paused)
        }
        h.advance(.seconds(1))
        let retry = h.send(.tick)
        h.verify(retry)
        #expect(h.state.phase == .shifting)
        #expect(h.state.stepStartedAt == h.now)
        #expect(h.state.weightsRetry == nil)
        #expect(h.log.events(.rollbackStarted).isEmpty)
        h.run(seconds: 60, answering: .pass("ok"))
        #expect(h.state.promotedAt != nil)
    }

    @Test("an instance that stops answering mid-bake pauses the run naming it, and the retry resumes it")
    func unreachableInstancePauses() {
        var h = Harness(fleetPolicy())
        h.start()
        let instance = LoadBalancerInstance(id: "lb-a pid 1, lb-b pid 2", startedAt: .seconds(0))
        h.send(.liveWeights(LiveWeightsReading(at: h.now, percentToTarget: h.state.percentToTarget, fromWeight: 1, toWeight: 1,
                                               instance: instance, fromInDrain: false)))
        #expect(h.state.phase == .shifting)
        h.send(.liveWeights(LiveWeightsReading(at: h.now, percentToTarget: h.state.percentToTarget, fromWeight: 1, toWeight: 1,
                                               instance: instance, fromInDrain: false,
                                               unreachable: ["lb-b (service cart, be_cart): connection refused"])))
        #expect(h.state.phase == .paused)
        #expect(h.state.reason?.contains("lb-b") == true)
        h.advance(.seconds(1))
        h.verify(h.send(.tick))
        #expect(h.state.phase == .shifting)
    }
}

@Suite("Counters of several instances, summed per instance")
struct RebasedSampleTests {
    static func green(_ responses: Int64, fivexx: Int64 = 0, active: Int = 0) -> [String: ClusterCounters] {
        ["green": ClusterCounters(responses: responses, responses2xx: responses - fivexx, responses5xx: fivexx,
                                  sessionsTotal: responses, activeSessions: active)]
    }

    static func sample(_ at: Int64, _ instances: [String: (process: String, responses: Int64)], previousTotal: Int64? = nil) -> LoadBalancerSample {
        var sample = LoadBalancerSample(at: .seconds(Double(at)), clusters: green(instances.values.reduce(0) { $0 + $1.responses }))
        sample.instances = instances.mapValues { InstanceCounters(process: $0.process, clusters: green($0.responses, active: 1)) }
        return sample
    }

    @Test("a restarted instance counts from 0: no drop, and what it counted since is new traffic")
    func restartIsNotADrop() {
        let first = Self.sample(1, ["lb-a": ("pid 1", 1000), "lb-b": ("pid 2", 800)])
        let second = Self.sample(2, ["lb-a": ("pid 1", 1100), "lb-b": ("pid 9", 30)]).rebased(onto: first)
        #expect(second.clusters["green"]?.responses == Int64(1800 + 100 + 30))
        let window = TrafficWindow(from: first.clusters["green"]!, at: first.at, to: second.clusters["green"]!, at: second.at)
        #expect(window?.responses == 130)
        #expect(second.clusters["green"]?.activeSessions == 2)
    }

    @Test("an instance that did not answer adds nothing and keeps its last counters for the next sample")
    func silentInstance() {
        let first = Self.sample(1, ["lb-a": ("pid 1", 1000), "lb-b": ("pid 2", 800)])
        let second = Self.sample(2, ["lb-a": ("pid 1", 1100)]).rebased(onto: first)
        #expect(second.clusters["green"]?.responses == 1900)
        let third = Self.sample(3, ["lb-a": ("pid 1", 1150), "lb-b": ("pid 2", 850)]).rebased(onto: second)
        #expect(third.clusters["green"]?.responses == 2000)
    }

    @Test("a new coordinator process continues from the journaled sample: no activity when nothing was counted")
    func acrossCoordinatorProcesses() {
        // The journaled sample's totals include a restart the old process saw (1,800 + 130).
        let first = Self.sample(1, ["lb-a": ("pid 1", 1000), "lb-b": ("pid 2", 800)])
        let journaled = Self.sample(2, ["lb-a": ("pid 1", 1100), "lb-b": ("pid 9", 30)]).rebased(onto: first)
        let fresh = Self.sample(3, ["lb-a": ("pid 1", 1100), "lb-b": ("pid 9", 30)]).rebased(onto: journaled)
        #expect(fresh.clusters["green"]?.responses == journaled.clusters["green"]?.responses)
        #expect(fresh.clusters["green"]?.sessionsTotal == journaled.clusters["green"]?.sessionsTotal)
    }
}
