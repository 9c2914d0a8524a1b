import Foundation
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverStore
import SwitchoverTestKit
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A whole switchover while HAProxy and the coordinator are SIGKILLed at random moments in every
/// phase (shifting, paused, promoted, draining, drained), under `hey` load (issue 11). At the
/// end: the live weights are what `status` says, every outcome a command printed was true of
/// the load balancer when it printed it, blue was never in drain while it carried traffic (a
/// watch reads HAProxy every 20 ms throughout), no request was answered with an error status,
/// and no intent is left unfinished.
///
/// `SWITCHOVER_FAULT_ROUNDS` (default 1, what CI runs) repeats the scenario with more faults per
/// stage; `SWITCHOVER_FAULT_SEED` replays a run (every failure message carries its seed).
@Suite
struct FaultInjectionTests {
    @Test("HAProxy and the coordinator SIGKILLed at random in every phase under load: the end state is read back, blue never drained while serving")
    func chaos() async throws {
        let environment = ProcessInfo.processInfo.environment
        let rounds = Int(environment["SWITCHOVER_FAULT_ROUNDS"] ?? "") ?? 1
        let firstSeed = UInt64(environment["SWITCHOVER_FAULT_SEED"] ?? "") ?? UInt64.random(in: 1...UInt64(Int64.max))
        for round in 0..<rounds {
            let seed = firstSeed &+ UInt64(round)
            let outcome = try await Self.scenario(seed: seed, faultsPerStage: rounds > 1 ? 4 : 2)
            print("fault injection round \(round + 1) of \(rounds), seed \(seed): \(outcome)")
        }
    }

    /// One scenario; returns a line saying what was injected and what was measured.
    static func scenario(seed: UInt64, faultsPerStage: Int) async throws -> String {
        var rng = SeededGenerator(seed: seed)
        var journal: [String] = []  // what the chaos did, for failure messages
        func note(_ line: String) { journal.append(line) }
        func context() -> String { "seed \(seed); schedule:\n" + journal.joined(separator: "\n") }
        func pause(_ range: ClosedRange<Int>) async throws {
            try await Task.sleep(for: .milliseconds(Int.random(in: range, using: &rng)))
        }

        let lab = try await CutoverLab("chaos", policy: .init(steps: [10, 25, 50, 100], bake: "2s", holdFor: "2s", drainTimeout: "3m"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 600)
        let watch = try SafetyGuardTests.DrainWatch(lab)
        var crashes = (haproxy: 0, coordinator: 0)
        var faultedIn: Set<String> = []
        var lastCrash: Instant?

        func crashHAProxy(_ phase: String) async throws {
            let down = Double(Int.random(in: 0...400, using: &rng)) / 1000
            note("HAProxy SIGKILLed in \(phase), down \(down)s")
            lastCrash = Instant(Date())
            try await lab.haproxy.restart(crash: true, downFor: down)
            crashes.haproxy += 1
            faultedIn.insert(phase)
        }

        /// What a command printed as its outcome must be what HAProxy held when it said so: what
        /// HAProxy holds right after it exits, unless the chaos crashed HAProxy after the
        /// command's last reading (then the world changed after the claim, and the last reading
        /// in the journal must bear it out).
        func checkClaim(_ what: String, drained: Bool) async throws {
            let store = try lab.journal()
            let run = try #require(try store.latestRun())
            let lastReading = try store.samples(run: run.id, cluster: "blue", since: .seconds(0)).last
            if let lastCrash, let lastReading, lastCrash >= lastReading.at {
                let green = try store.samples(run: run.id, cluster: "green", since: lastReading.at).last
                #expect(lastReading.counters.weight == 0 && (green?.counters.weight ?? 0) > 0,
                        "\(what): the last reading before HAProxy was crashed does not show all traffic on green; \(context())")
                note("\(what): HAProxy crashed after its last reading; judged on that reading")
                return
            }
            let (blue, green) = try await lab.liveWeights()
            #expect(blue == 0 && green > 0, "\(what) claimed all traffic on green; HAProxy reads blue \(blue), green \(green); \(context())")
            if drained {
                #expect(try await lab.blueInDrain(), "\(what) claimed blue drained; blue-1 is not in drain; \(context())")
            }
        }

        /// Runs `switchover run --until GOAL` to exit 0, SIGKILLing it and HAProxy meanwhile:
        /// first once in each phase of `certain` as soon as the run is seen in it (HAProxy in
        /// shifting and paused, the coordinator while draining; a `pause` is asked for to get
        /// there), so every phase is hit in every round; then `faults` at random.
        func runThroughFaults(until goal: String, faults: Int, certain: Set<Phase> = []) async throws {
            var coordinator = try lab.startCoordinator(until: goal)
            var left = faults
            var killed = false
            var pending = certain
            func killCoordinator(in phase: Phase, _ how: String) async {
                note("coordinator SIGKILLed in \(phase.rawValue)\(how)")
                coordinator.signal(SIGKILL)
                _ = await coordinator.waitForExit(timeout: 5)
                killed = true
                crashes.coordinator += 1
                faultedIn.insert(phase.rawValue)
            }
            let deadline = Date().addingTimeInterval(240)
            while Date() < deadline {
                if !coordinator.isRunning {
                    let status = coordinator.exitStatus ?? -1
                    if status == 0 && left <= 0 { return }
                    if status == 0 {
                        // Reached the goal before every fault was spent: fine, the faults go to the next stage.
                        return
                    }
                    // Killed by us (SIGKILL: status 9), or 2: its checks found HAProxy restarting.
                    // Anything else is a failure.
                    let expected = killed || status == 2
                    #expect(expected, "coordinator exited \(status): \(coordinator.logTail(lines: 30)); \(context())")
                    if !expected { throw TestKitError("coordinator failed; \(context())") }
                    killed = false
                    try await pause(0...800)
                    coordinator = try lab.startCoordinator(until: goal)
                    note("coordinator started again (run --until \(goal))")
                    continue
                }
                try await pause(pending.isEmpty ? 300...1500 : 40...80)
                let phase = (try? lab.state())?.phase
                if let phase, pending.contains(phase), coordinator.isRunning {
                    pending.remove(phase)
                    if phase == .draining {
                        await killCoordinator(in: phase, " (certain)")
                    } else {
                        try await crashHAProxy(phase.rawValue)
                    }
                    continue
                }
                if phase == .shifting, pending.contains(.paused), !pending.contains(.shifting), coordinator.isRunning {
                    let paused = try await lab.cli(["pause", "--reason", "chaos (certain)"])
                    note("pause (certain): exit \(paused.exitCode)")
                    continue
                }
                if phase == .paused {
                    if Bool.random(using: &rng) { try await crashHAProxy("paused") }
                    let resume = try await lab.cli(["resume"])
                    note("resume: exit \(resume.exitCode)")
                    continue
                }
                guard left > 0, coordinator.isRunning, let phase else { continue }
                left -= 1
                switch Int.random(in: 0..<3, using: &rng) {
                case 0:
                    try await crashHAProxy(phase.rawValue)
                case 1:
                    await killCoordinator(in: phase, "")
                default:
                    if phase == .shifting {
                        let paused = try await lab.cli(["pause", "--reason", "chaos"])
                        note("pause: exit \(paused.exitCode)")
                    }
                }
            }
            throw TestKitError("the run did not reach \(goal) in 240 s; \(context())\n\(coordinator.logTail(lines: 40))")
        }

        // Shifting and paused, until promoted; then HAProxy dies while promoted, with no coordinator.
        try await runThroughFaults(until: "promoted", faults: faultsPerStage + 1, certain: [.shifting, .paused])
        try await checkClaim("run --until promoted", drained: false)
        try await crashHAProxy("promoted")
        // Resumed: the weights go back, blue is drained, with faults while draining.
        try await runThroughFaults(until: "drained", faults: faultsPerStage, certain: [.draining])
        try await checkClaim("run --until drained", drained: true)
        // Drained, no coordinator: HAProxy dies; `drain blue` resumes and writes everything back.
        try await crashHAProxy("drained")
        let drain = try await lab.cli(["drain", "blue", "--policy", "test"])
        #expect(drain.exitCode == 0, "\(drain.stdout) \(drain.stderr); \(context())")
        try await checkClaim("drain blue", drained: true)

        // The end: status agrees with HAProxy, nothing unfinished, blue never drained while serving.
        let status = try await lab.statusJSON()
        let weights = status["weights"] as? [String: Any], live = status["liveWeights"] as? [String: Any]
        #expect(status["phase"] as? String == "drained", "\(status); \(context())")
        #expect((weights?["green"] as? Int) == 100 && (live?["green"] as? Int) == 100, "\(status); \(context())")
        #expect((weights?["blue"] as? Int) == 0 && (live?["blue"] as? Int) == 0, "\(status); \(context())")
        let store = try lab.journal()
        let run = try #require(try store.latestRun())
        let unfinished = try store.unfinishedIntents(run: run.id)
        #expect(unfinished.isEmpty, "unfinished: \(unfinished.map { "\($0.sequence) \($0.kind) \($0.detail)" }); \(context())")
        let (violations, readings) = await watch.stop()
        #expect(violations.isEmpty, "blue drained while serving: \(violations.prefix(3)); \(context())")
        let load = try await HeyReport.finish(try #require(lab.load))
        let answeredNot2xx = load.responses - load.ok
        #expect(answeredNot2xx == 0, "requests answered with an error status: \(load.statusCounts); \(context())")
        #expect(faultedIn.isSuperset(of: ["shifting", "paused", "promoted", "draining", "drained"]), "\(faultedIn); \(context())")
        return "HAProxy crashed \(crashes.haproxy)×, coordinator \(crashes.coordinator)×, in \(faultedIn.sorted()); "
            + "\(readings) drain-state readings, \(violations.count) violations; hey: \(load.responses) responses "
            + "\(load.statusCounts.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ")), "
            + "\(load.errors) connection errors while HAProxy was down"
    }
}
