import Foundation
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverStore
import SwitchoverTestKit
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The guards that must hold when the world moves under the coordinator: HAProxy restarted or
/// changed by hand, frozen, its socket gone, a coordinator restarted while a person asks for a
/// rollback. Each runs the built binary against a real HAProxy and nginx, with `hey` load where
/// a wrong move would show as failed requests.
@Suite(.serialized)
struct SafetyGuardTests {
    /// Polls HAProxy every 20 ms while a command runs and records every moment blue-1 was in
    /// drain while it still had weight or green had none: the outage the drain guard prevents.
    final class DrainWatch: @unchecked Sendable {
        private let lock = NSLock()
        private var violations: [String] = []
        private var readings = 0
        private var task: Task<Void, Never>?

        init(_ lab: CutoverLab) throws {
            let driver = try lab.driver()
            task = Task { [weak self] in
                while !Task.isCancelled {
                    if let live = try? await driver.currentWeights() {
                        let inDrain = live.inDrain?.contains("blue-1") == true
                        let bad = inDrain && (live.assignment.fromTotal > 0 || live.assignment.toTotal == 0)
                        self?.note(bad ? "blue-1 in drain at weights blue \(live.assignment.fromTotal), green \(live.assignment.toTotal)" : nil)
                    }
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
        }

        private func note(_ violation: String?) {
            lock.lock(); defer { lock.unlock() }
            readings += 1
            if let violation { violations.append(violation) }
        }

        /// Stops polling; returns the violations seen and how many readings were taken.
        func stop() async -> (violations: [String], readings: Int) {
            task?.cancel()
            await task?.value
            return result()
        }

        private func result() -> (violations: [String], readings: Int) {
            lock.lock(); defer { lock.unlock() }
            return (violations, readings)
        }
    }

    /// A whole run to drained, with hey load for green's gate (its window needs requests).
    static func runToDrained(_ lab: CutoverLab) throws {
        try lab.startLoad(seconds: 25)
        let run = try lab.cli(["run", "blue", "green", "--policy", "test", "--until", "drained"])
        guard run.exitCode == 0, try lab.state()?.phase == .drained else {
            throw TestKitError("run did not end drained (\(run.exitCode)): \(run.stdout) \(run.stderr)")
        }
    }

    // MARK: - 1. drain on a resumed run

    @Test("drain resumed after HAProxy restarted (blue back at full weight): green's weights go back first, blue is never drained while it carries traffic")
    func drainResumeAfterRestart() async throws {
        let lab = try CutoverLab("guard-drain-restart", policy: .init(holdFor: "1s"))
        defer { lab.stopAll() }
        try Self.runToDrained(lab)
        try lab.haproxy.restart()  // what a restart or reload does: configured weights, no drain state
        #expect(try await lab.liveWeights() == (1, 0))
        #expect(try await lab.blueInDrain() == false)

        try lab.startLoad(seconds: 12)
        try await Task.sleep(for: .milliseconds(500))
        let watch = try DrainWatch(lab)
        let drain = try lab.cli(["drain", "blue", "--policy", "test"])
        let (violations, readings) = await watch.stop()
        #expect(drain.exitCode == 0, "\(drain.stdout) \(drain.stderr)")
        #expect(readings > 20, "the watch read HAProxy while the drain ran")
        #expect(violations.isEmpty, "\(violations.prefix(3))")
        let (blue, green) = try await lab.liveWeights()
        #expect(blue == 0 && green > 0, "green's weights written back")
        #expect(try await lab.blueInDrain())
        #expect(try lab.state()?.phase == .drained)
        let events = try lab.events()
        #expect(events.contains { $0.kind == EngineEvent.Kind.weightsReasserted.rawValue })
        let load = try lab.loadReport()
        #expect(load.responses > 500, "\(load)")
        #expect(load.failed == 0, "no request failed while blue was drained again: \(load)")
    }

    @Test("drain resumed after someone set blue's weight back by hand on the same HAProxy: refused, blue not drained, nothing changed")
    func drainResumeRefusesHandChange() async throws {
        let lab = try CutoverLab("guard-drain-hand", policy: .init(holdFor: "1s"))
        defer { lab.stopAll() }
        try Self.runToDrained(lab)
        try lab.haproxy.runtimeCommand("set server app/blue-1 state ready;set server app/blue-1 weight 1;set server app/green-1 weight 0")
        #expect(try await lab.liveWeights() == (1, 0))
        let watch = try DrainWatch(lab)
        let drain = try lab.cli(["drain", "blue", "--policy", "test"])
        let (violations, _) = await watch.stop()
        #expect(drain.exitCode == 1, "\(drain.stdout) \(drain.stderr)")
        #expect(drain.stdout.contains("someone changed them") && drain.stdout.contains("nothing was changed"), "\(drain.stdout) \(drain.stderr)")
        #expect(violations.isEmpty, "\(violations.prefix(3))")
        #expect(try await lab.liveWeights() == (1, 0), "the person's weights are left as they are")
        #expect(try await lab.blueInDrain() == false)
    }

    // MARK: - 2. decommission on fresh evidence only

    @Test("decommission with the runtime API gone or frozen refuses on stale evidence (exit 1) and records nothing; --force --reason records it")
    func decommissionNeedsFreshEvidence() async throws {
        let lab = try CutoverLab("guard-decommission", policy: .init(holdFor: "1s"))
        defer { lab.stopAll() }
        try Self.runToDrained(lab)
        try lab.haproxy.restart()  // blue back at full weight, as in the report

        // The admin socket moved away: connecting fails at once.
        let away = lab.haproxy.socketPath + ".away"
        try FileManager.default.moveItem(atPath: lab.haproxy.socketPath, toPath: away)
        let moved = try lab.cli(["decommission", "blue"])
        #expect(moved.exitCode == 1, "\(moved.stdout) \(moved.stderr)")
        #expect(moved.stdout.contains("refused") && moved.stdout.contains("no fresh evidence"), "\(moved.stdout)")
        #expect(try lab.state()?.phase == .drained, "nothing recorded")
        try FileManager.default.moveItem(atPath: away, toPath: lab.haproxy.socketPath)

        // HAProxy frozen: the socket accepts and never answers.
        lab.haproxy.signal(SIGSTOP)
        let frozen = try lab.cli(["decommission", "blue"])
        lab.haproxy.signal(SIGCONT)
        #expect(frozen.exitCode == 1, "\(frozen.stdout) \(frozen.stderr)")
        #expect(frozen.stdout.contains("no fresh evidence"), "\(frozen.stdout)")
        #expect(try lab.state()?.phase == .drained)

        // Answering again: the fresh sample shows blue's weight back, so it is not drained.
        let fresh = try lab.cli(["decommission", "blue"])
        #expect(fresh.exitCode == 1, "\(fresh.stdout) \(fresh.stderr)")
        #expect(fresh.stdout.contains("live weight is 1, not 0"), "\(fresh.stdout)")
        #expect(try lab.state()?.phase == .draining)
        #expect(try lab.state()?.decommissionedAt == nil)

        let forced = try lab.cli(["decommission", "blue", "--force", "--reason", "blue is being rebuilt anyway"])
        #expect(forced.exitCode == 0, "\(forced.stdout) \(forced.stderr)")
        #expect(try lab.state()?.phase == .decommissioned)
    }

    // MARK: - 3. rollback while a resumed coordinator runs its checks

    @Test("rollback sent while a resumed coordinator probes a slow health endpoint is carried out, never refused as stale")
    func rollbackDuringResumeChecks() async throws {
        let lab = try CutoverLab("guard-resume-rollback", policy: .init(bake: "20s", blueHealthPath: "/slowhealth"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 40)
        let first = try lab.startCoordinator()
        try lab.waitFor("step 1 baking", timeout: 30, process: first) { $0.step == 1 && $0.stepStartedAt != nil }
        first.signal(SIGKILL)
        _ = first.waitForExit(timeout: 5)

        let second = try lab.startCoordinator()
        defer { second.stop() }
        try await Task.sleep(for: .milliseconds(700))  // the resumed coordinator holds the lock, probing health
        let status = try lab.statusJSON()
        #expect((status["coordinator"] as? [String: Any])?["running"] as? Bool == true)
        let rollback = try lab.cli(["rollback", "--reason", "operator saw errors"])
        #expect(rollback.exitCode == 0, "\(rollback.stdout) \(rollback.stderr)")
        #expect(!rollback.stdout.contains("no coordinator"), "\(rollback.stdout)")
        let exit = try lab.waitForExit(second)
        #expect(exit == 1, "rolled back: \(second.logTail(lines: 20))")
        let state = try #require(try lab.state())
        #expect(state.phase == .rolledBack && state.rollbackVerified)
        let (blue, green) = try await lab.liveWeights()
        #expect(blue > 0 && green == 0)
    }

    // MARK: - 4. HAProxy restarted while draining

    @Test("HAProxy SIGKILLed and restarted while draining: the coordinator writes 100% to green and the drain state again, then blue drains")
    func restartWhileDraining() async throws {
        let lab = try CutoverLab("guard-restart-draining", policy: .init(holdFor: "3s", drainTimeout: "40s"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 30)
        let coordinator = try lab.startCoordinator(until: "drained")
        defer { coordinator.stop() }
        try lab.waitFor("draining", timeout: 40, process: coordinator) { $0.phase == .draining && $0.drain?.lastSample != nil }
        try lab.haproxy.restart(crash: true)
        let watch = try DrainWatch(lab)
        let exit = try lab.waitForExit(coordinator)
        let (violations, _) = await watch.stop()
        #expect(exit == 0, "\(coordinator.logTail(lines: 30))")
        #expect(violations.isEmpty, "\(violations.prefix(3))")
        let (blue, green) = try await lab.liveWeights()
        #expect(blue == 0 && green > 0)
        #expect(try await lab.blueInDrain())
        let events = try lab.events()
        #expect(events.contains { $0.kind == EngineEvent.Kind.weightsDrift.rawValue })
        #expect(events.contains { $0.kind == EngineEvent.Kind.weightsReasserted.rawValue })
        #expect(try lab.state()?.phase == .drained)
    }

    @Test("a drain that times out says what the load balancer last read back, not that all traffic stays on green")
    func drainTimeoutMessageIsReadBack() async throws {
        let lab = try CutoverLab("guard-timeout-message", policy: .init(holdFor: "30s", drainTimeout: "3s"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 20)
        let run = try lab.cli(["run", "blue", "green", "--policy", "test", "--until", "drained"])
        #expect(run.exitCode == 1, "\(run.stdout) \(run.stderr)")
        #expect(run.stdout.contains("drain timed out"), "\(run.stdout)")
        #expect(run.stdout.contains("live weights last read back 100% to green (blue 0, green "), "\(run.stdout)")
        #expect(!run.stdout.contains("all traffic stays on"), "\(run.stdout)")
    }
}
