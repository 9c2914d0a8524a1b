import Foundation
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverStore
import SwitchoverTestKit
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `switchover run` as the built binary against real HAProxy, nginx and Prometheus, under load
/// from `hey`. Bakes of 1.5 s, sampling 250 ms, so the suite stays around a minute or two.
@Suite
struct CutoverIntegrationTests {
    @Test("a healthy run ends promoted with 100% on green read back from HAProxy; a second run refuses meanwhile")
    func healthyRunPromotes() async throws {
        let lab = try await CutoverLab("healthy")
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 30)
        let coordinator = try lab.startCoordinator()
        defer { coordinator.stopInBackground() }

        try await lab.waitFor("step 1 verified", process: coordinator) { $0.phase == .shifting && $0.stepStartedAt != nil }
        // One coordinator per journal: the second names the holder's PID.
        let second = try await lab.cli(["run", "blue", "green", "--policy", "test"])
        #expect(second.exitCode == 2)
        #expect(second.stderr.contains("PID \(coordinator.pid)"), "\(second.stderr)")

        // status --output json while it runs.
        let status = try await lab.statusJSON()
        #expect(status["phase"] as? String == "shifting")
        #expect((status["step"] as? Int ?? 0) >= 1)
        let weights = try #require(status["weights"] as? [String: Any])
        #expect(weights["green"] != nil && weights["blue"] != nil)
        let live = try #require(status["liveWeights"] as? [String: Any])
        #expect(live["green"] != nil)

        let exit = try await lab.waitForExit(coordinator)
        #expect(exit == 0, "\(coordinator.logTail(lines: 30))")
        let log = coordinator.logTail(lines: 200)
        #expect(log.contains("promoted"), "\(log)")
        let (blue, green) = try await lab.liveWeights()
        #expect(blue == 0)
        #expect(green > 0)
        let state = try #require(try lab.state())
        #expect(state.phase == .promoted)
        #expect(state.step == 4)
        // Every step was started, verified and completed in order.
        let verified = try lab.events().filter { $0.kind == "stepVerified" }.count
        #expect(verified == 4)
        // The trust report is journaled as preflight evidence.
        let trust = try #require(try lab.events().first { $0.kind == "trustVerified" })
        #expect(trust.detail.contains("\"trusted\":true"), "\(trust.detail.prefix(300))")
        let final = try await lab.statusJSON()
        #expect(final["phase"] as? String == "promoted")
        #expect((final["liveWeights"] as? [String: Any])?["green"] as? Int == 100)
    }

    @Test("green failing at the third step rolls back to 100% blue; the journal says which gate and when")
    func failingGreenRollsBack() async throws {
        let lab = try await CutoverLab("rollback", policy: .init(bake: "2s"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 30)
        let coordinator = try lab.startCoordinator()
        defer { coordinator.stopInBackground() }

        try await lab.waitFor("step 3 verified", process: coordinator) { $0.step == 3 && $0.stepStartedAt != nil }
        let faultAt = Instant(millisecondsSinceEpoch: Int64(Date().timeIntervalSince1970 * 1000))
        try lab.green.fail(true)

        let exit = try await lab.waitForExit(coordinator)
        #expect(exit == 1, "\(coordinator.logTail(lines: 30))")
        let (blue, green) = try await lab.liveWeights()
        #expect(blue > 0 && green == 0)
        let state = try #require(try lab.state())
        #expect(state.phase == .rolledBack && state.rollbackVerified)

        let started = try #require(try lab.events().first { $0.kind == "rollbackStarted" })
        let event = try JSONDecoder().decode(EngineEvent.self, from: Data(started.detail.utf8))
        #expect(event.gate == "green-errors", "\(started.detail)")
        #expect(event.step == 3)
        #expect(started.at >= faultAt)
        #expect(try lab.events().contains { $0.kind == "rollbackVerified" })
        let log = coordinator.logTail(lines: 200)
        #expect(log.contains("rolled back by gate green-errors"), "\(log)")
    }

    @Test("the hard signal puts all traffic back on blue within about a second of green failing, mid-bake")
    func hardSignalRollsBackFast() async throws {
        let lab = try await CutoverLab("hard", policy: .init(steps: [25, 100], bake: "30s", hardSignal: (0.2, 10)))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 30, rate: 50, workers: 6)
        let coordinator = try lab.startCoordinator()
        defer { coordinator.stopInBackground() }
        try await lab.waitFor("step 1 baking", process: coordinator) { $0.step == 1 && $0.stepStartedAt != nil }
        try await Task.sleep(for: .seconds(1))

        let driver = try lab.driver()
        // The fault and the polls of HAProxy's weights (every 10 ms) run on the test kit's
        // stopwatch thread: a poll that waited for the cooperative pool, which the suites running
        // in parallel share, would add that wait to the figure.
        let (rolledBack, measured) = try await Stopwatch.measure { () async throws -> Bool in
            try lab.green.fail(true)
            let started = ContinuousClock.now
            while ContinuousClock.now - started < .seconds(5) {
                let live = try await driver.currentWeights()
                if live.assignment.toTotal == 0 && live.assignment.fromTotal > 0 { return true }
                try await Task.sleep(for: .milliseconds(10))
            }
            return false
        }
        try #require(rolledBack, "no rollback within 5 s")
        // The target is 1 s; the bound leaves room for a busy 2-core CI machine
        // (bench/rollback.sh measures the figure properly).
        #expect(measured < .milliseconds(1500), "rollback took \(measured)")
        #expect(try await lab.waitForExit(coordinator) == 1)
        #expect(try lab.events().contains { $0.kind == "hardSignal" })
    }

    @Test("Prometheus stopped mid-run pauses (no rollback); back again, `resume` continues to promoted")
    func prometheusOutagePauses() async throws {
        let lab = try await CutoverLab("outage", policy: .init(bake: "2s", prometheusGate: true))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 40)
        let coordinator = try lab.startCoordinator()
        defer { coordinator.stopInBackground() }

        let before = try await lab.waitFor("step 2 verified", process: coordinator) { $0.step == 2 && $0.stepStartedAt != nil }
        await lab.stopPrometheus()
        let paused = try await lab.waitFor("paused", process: coordinator) { $0.phase == .paused }
        #expect(paused.reason?.contains("haproxy-up") == true, "\(paused.reason ?? "")")
        #expect(paused.step == before.step)
        let (_, greenWhilePaused) = try await lab.liveWeights()
        #expect(greenWhilePaused > 0, "paused, not rolled back")
        #expect(!(try lab.events().contains { $0.kind == "rollbackStarted" }))
        let status = try await lab.statusJSON()
        #expect(status["phase"] as? String == "paused")

        try await lab.startPrometheus()
        let resume = try await lab.cli(["resume"])
        #expect(resume.exitCode == 0, "\(resume.stdout) \(resume.stderr)")
        #expect(resume.stdout.contains("accepted"))
        let exit = try await lab.waitForExit(coordinator)
        #expect(exit == 0, "\(coordinator.logTail(lines: 30))")
        let (blue, green) = try await lab.liveWeights()
        #expect(blue == 0 && green > 0)
    }

    @Test("a coordinator SIGKILLed mid-bake resumes the same step with the same weights and finishes")
    func killedMidBakeResumes() async throws {
        let lab = try await CutoverLab("kill", policy: .init(bake: "3s"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 40)
        let first = try lab.startCoordinator()
        let baking = try await lab.waitFor("step 2 baking", process: first) { $0.step == 2 && $0.stepStartedAt != nil }
        try await Task.sleep(for: .milliseconds(500))
        first.signal(SIGKILL)
        _ = await first.waitForExit(timeout: 5)
        let weightsAtKill = try await lab.liveWeights()
        let eventsAtKill = try lab.events().count

        let second = try lab.startCoordinator()
        defer { second.stopInBackground() }
        let exit = try await lab.waitForExit(second)
        #expect(exit == 0, "\(second.logTail(lines: 30))")

        let after = Array(try lab.events().dropFirst(eventsAtKill))
        // The first step the resumed coordinator verified is the one it was killed in, at the
        // same weights; the step after it started only once that step had baked again.
        let firstVerified = try #require(after.first { $0.kind == "stepVerified" })
        let verifiedEvent = try JSONDecoder().decode(EngineEvent.self, from: Data(firstVerified.detail.utf8))
        #expect(verifiedEvent.step == baking.step)
        #expect(weightsAtKill.green > 0 && weightsAtKill.blue > 0)
        let resultAfterResume = try #require(after.first { $0.kind == "result" })
        let servers = try #require(try JSONSerialization.jsonObject(with: Data(resultAfterResume.detail.utf8)) as? [String: Any])
        let read = try #require(servers["servers"] as? [String: Int])
        #expect(read["green-1"] == weightsAtKill.green && read["blue-1"] == weightsAtKill.blue)
        let step3 = try #require(after.first { $0.kind == "stepStarted" && $0.detail.contains("\"step\":3") })
        #expect(step3.at - firstVerified.at >= .seconds(3))
        #expect(try lab.state()?.phase == .promoted)
    }

    @Test("a coordinator killed between intent and result re-applies that intent exactly once")
    func killedBetweenIntentAndResult() async throws {
        let lab = try await CutoverLab("intent")
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 30)
        // The second weight intent is step 2's: the process exits right after journaling it.
        let first = try lab.startCoordinator(environment: ["SWITCHOVER_TEST_CRASH_AFTER_INTENT": "2"])
        let status = try await lab.waitForExit(first, timeout: 30)
        #expect(status == 137, "\(first.logTail(lines: 20))")
        let journal = try lab.journal()
        let run = try #require(try journal.latestRun())
        let unfinished = try journal.unfinishedIntents(run: run.id)
        #expect(unfinished.count == 1)
        let intentID = try #require(unfinished.first?.intentID ?? unfinished.first?.sequence)
        // Not applied yet: HAProxy still holds step 1's weights.
        let (_, greenBefore) = try await lab.liveWeights()
        let step1 = WeightTranslation.haproxy.weights(percentToTarget: 10, from: ["blue-1"], to: ["green-1"])
        #expect(greenBefore == step1.toTotal)

        let second = try lab.startCoordinator()
        defer { second.stopInBackground() }
        let exit = try await lab.waitForExit(second)
        #expect(exit == 0, "\(second.logTail(lines: 30))")

        let events = try lab.events()
        let results = events.filter { $0.kind == "result" && $0.intentID == intentID }
        #expect(results.count == 1, "the intent was finished exactly once")
        #expect(results.first?.ok == true)
        #expect(events.filter { $0.kind == "intentReapplied" }.count == 1)
        // No second intent for the same weight change was written.
        let intentsForStep2 = events.filter { $0.kind == "intent" && $0.detail.contains("\"intent\":2") }
        #expect(intentsForStep2.count == 1)
        #expect(try journal.unfinishedIntents(run: run.id).isEmpty)
        #expect(try lab.state()?.phase == .promoted)
    }
}
