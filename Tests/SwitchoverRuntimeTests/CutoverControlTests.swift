import Foundation
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverStore
import SwitchoverTestKit
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Preflight refusals, manual commands from another process, SIGINT, and `rollback` with no
/// coordinator running, all through the built binary against real HAProxy and nginx.
@Suite
struct CutoverControlTests {
    @Test("preflight refuses with the numbers when live weights are not 0% to TO or a health check fails; nothing changes")
    func preflightRefuses() async throws {
        let lab = try await CutoverLab("preflight")
        defer { lab.stopAll() }
        // Someone already sent traffic to green behind our back.
        let driver = try lab.driver()
        try await driver.apply(WeightAssignment(from: [.init(server: "blue-1", weight: 3)], to: [.init(server: "green-1", weight: 1)]))
        await lab.green.stop()

        let result = try await lab.cli(["run", "blue", "green", "--policy", "test"])
        #expect(result.exitCode == 2)
        #expect(result.stderr.contains("preflight failed"), "\(result.stderr)")
        #expect(result.stderr.contains("25% to green"), "\(result.stderr)")
        #expect(result.stderr.contains("blue-1=3 green-1=1"), "\(result.stderr)")
        #expect(result.stderr.contains("cluster green: health"), "\(result.stderr)")
        let (blue, green) = try await lab.liveWeights()
        #expect(blue == 3 && green == 1, "a failed preflight changes nothing")
        #expect(try lab.state() == nil, "no run was journaled")

        let status = try await lab.cli(["status"])
        #expect(status.exitCode == 0)
        #expect(status.stdout.contains("no run journaled"))
    }

    @Test("pause and promote from another process are acknowledged; a paused run holds its weights")
    func pauseThenPromote() async throws {
        let lab = try await CutoverLab("control", policy: .init(bake: "3s"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 30)
        let coordinator = try lab.startCoordinator()
        defer { coordinator.stopInBackground() }
        try await lab.waitFor("step 1 baking", process: coordinator) { $0.step == 1 && $0.stepStartedAt != nil }

        let pause = try await lab.cli(["pause", "--reason", "look at dashboards"])
        #expect(pause.exitCode == 0, "\(pause.stdout) \(pause.stderr)")
        #expect(try lab.state()?.phase == .paused)
        let again = try await lab.cli(["pause"])
        #expect(again.exitCode == 1)
        #expect(again.stdout.contains("refused"), "\(again.stdout)")
        try await Task.sleep(for: .seconds(4))  // longer than the bake: a paused step never advances
        let held = try #require(try lab.state())
        #expect(held.phase == .paused && held.step == 1)
        let status = try await lab.statusJSON()
        #expect((status["reason"] as? String)?.contains("look at dashboards") == true)

        let promote = try await lab.cli(["promote"])
        #expect(promote.exitCode == 0, "\(promote.stdout) \(promote.stderr)")
        let exit = try await lab.waitForExit(coordinator)
        #expect(exit == 0, "\(coordinator.logTail(lines: 20))")
        let (blue, green) = try await lab.liveWeights()
        #expect(blue == 0 && green > 0)
    }

    @Test("HAProxy restarted mid-bake forgets the weights: the coordinator writes the step's weights again, the step bakes again, and the run promotes")
    func loadBalancerRestartReasserts() async throws {
        let lab = try await CutoverLab("restart", policy: .init(bake: "3s"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 40)
        let coordinator = try lab.startCoordinator()
        defer { coordinator.stopInBackground() }
        let baking = try await lab.waitFor("step 2 baking", process: coordinator) { $0.step == 2 && $0.stepStartedAt != nil }
        let eventsBefore = try lab.events().count
        try await lab.haproxy.restart()
        let exit = try await lab.waitForExit(coordinator)
        #expect(exit == 0, "\(coordinator.logTail(lines: 20))")
        let after = Array(try lab.events().dropFirst(eventsBefore))
        let drift = try #require(after.first { $0.kind == "weightsDrift" }, "the restart was seen")
        #expect(drift.detail.contains("restarted"), "\(drift.detail)")
        // The same step was written again and baked again before the next one started.
        let reverified = try #require(after.first { $0.kind == "stepVerified" && $0.at >= drift.at })
        let event = try JSONDecoder().decode(EngineEvent.self, from: Data(reverified.detail.utf8))
        #expect(event.step == baking.step)
        let next = try #require(after.first { $0.kind == "stepStarted" && $0.detail.contains("\"step\":\(baking.step + 1)") })
        #expect(next.at - reverified.at >= .seconds(3), "the bake restarted once the weights read back")
        #expect(!after.contains { $0.kind == "paused" }, "a restart is repaired, not a reason to pause")
        let (blue, green) = try await lab.liveWeights()
        #expect(blue == 0 && green > 0)
    }

    @Test("weights changed by hand mid-bake pause the run saying so (not 'paused by command'); resume writes the step's weights again")
    func handChangedWeightsPause() async throws {
        let lab = try await CutoverLab("hand-drift", policy: .init(bake: "3s"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 40)
        let coordinator = try lab.startCoordinator()
        defer { coordinator.stopInBackground() }
        let baking = try await lab.waitFor("step 2 baking", process: coordinator) { $0.step == 2 && $0.stepStartedAt != nil }
        try await lab.haproxy.runtimeCommand("set server app/green-1 weight 0")
        let paused = try await lab.waitFor("paused", process: coordinator) { $0.phase == .paused }
        #expect(paused.step == baking.step)
        let reason = paused.reason ?? ""
        #expect(reason.contains("live weights differ") && reason.contains("not by Switchover"), "\(reason)")
        #expect(!reason.contains("paused by command"), "\(reason)")
        #expect(try await lab.liveWeights().green == 0, "a person's change is not overridden")
        // Reported once per episode: two seconds (eight samples) later, no new line and no new event.
        func mentions() -> Int { coordinator.logTail(lines: 500).components(separatedBy: "live weights differ").count - 1 }
        // The process writes the episode's lines (the drift, the pause, the phase change) after
        // the state this test polls: under load they come a moment later. Count once the count
        // has held still for a second.
        var logged = mentions()
        var still = 0
        let settle = ContinuousClock.now + .seconds(15)
        while still < 4, ContinuousClock.now < settle {
            try await Task.sleep(for: .milliseconds(250))
            let now = mentions()
            still = now == logged && now > 0 ? still + 1 : 0
            logged = now
        }
        #expect(logged > 0, "said at all:\n\(coordinator.logTail(lines: 30))")
        try await Task.sleep(for: .seconds(2))
        #expect(mentions() == logged, "not logged on every sample:\n\(coordinator.logTail(lines: 30))")
        #expect(try lab.events().filter { $0.kind == "weightsDrift" }.count == 1, "journaled once, not on every sample")

        let resume = try await lab.cli(["resume"])
        #expect(resume.exitCode == 0, "\(resume.stdout) \(resume.stderr)")
        let exit = try await lab.waitForExit(coordinator)
        #expect(exit == 0, "\(coordinator.logTail(lines: 20))")
        let (blue, green) = try await lab.liveWeights()
        #expect(blue == 0 && green > 0)
    }

    @Test("SIGINT stops the coordinator and leaves the weights; with no coordinator `pause` refuses and `rollback` rolls back itself")
    func interruptThenOfflineRollback() async throws {
        let lab = try await CutoverLab("sigint", policy: .init(bake: "3s"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 30)
        let coordinator = try lab.startCoordinator()
        try await lab.waitFor("step 2 baking", process: coordinator) { $0.step == 2 && $0.stepStartedAt != nil }
        let before = try await lab.liveWeights()
        coordinator.signal(SIGINT)
        let exit = try await lab.waitForExit(coordinator, timeout: 10)
        #expect(exit == 130, "\(coordinator.logTail(lines: 20))")
        #expect(try await lab.liveWeights() == before, "SIGINT leaves the weights as they are")
        #expect(try lab.events().contains { $0.kind == "coordinatorStopped" })
        #expect(try lab.state()?.phase == .shifting, "resumable")

        let pause = try await lab.cli(["pause"])
        #expect(pause.exitCode == 1)
        #expect(pause.stdout.contains("no coordinator is running"), "\(pause.stdout)")

        let rollback = try await lab.cli(["rollback", "--reason", "coordinator gone"])
        #expect(rollback.exitCode == 0, "\(rollback.stdout) \(rollback.stderr)")
        let (blue, green) = try await lab.liveWeights()
        #expect(blue > 0 && green == 0)
        let state = try #require(try lab.state())
        #expect(state.phase == .rolledBack && state.rollbackVerified)
        let events = try lab.events()
        #expect(events.contains { $0.kind == "offlineCommand" })
        #expect(events.contains { $0.kind == "rollbackVerified" })
    }
}
