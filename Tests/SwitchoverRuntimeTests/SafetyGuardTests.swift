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
@Suite
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
    static func runToDrained(_ lab: CutoverLab) async throws {
        try lab.startLoad(seconds: 25)
        let run = try await lab.cli(["run", "blue", "green", "--policy", "test", "--until", "drained"])
        guard run.exitCode == 0, try lab.state()?.phase == .drained else {
            throw TestKitError("run did not end drained (\(run.exitCode)): \(run.stdout) \(run.stderr)")
        }
    }

    // MARK: - 1. drain on a resumed run

    @Test("drain resumed after HAProxy restarted (blue back at full weight): green's weights go back first, blue is never drained while it carries traffic")
    func drainResumeAfterRestart() async throws {
        let lab = try await CutoverLab("guard-drain-restart", policy: .init(holdFor: "1s"))
        defer { lab.stopAll() }
        try await Self.runToDrained(lab)
        try await lab.haproxy.restart()  // what a restart or reload does: configured weights, no drain state
        #expect(try await lab.liveWeights() == (1, 0))
        #expect(try await lab.blueInDrain() == false)

        try lab.startLoad(seconds: 12)
        try await Task.sleep(for: .milliseconds(500))
        let watch = try DrainWatch(lab)
        let drain = try await lab.cli(["drain", "blue", "--policy", "test"])
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
        let load = try await lab.loadReport()
        #expect(load.responses > 500, "\(load)")
        #expect(load.failed == 0, "no request failed while blue was drained again: \(load)")
    }

    @Test("drain resumed after someone set blue's weight back by hand on the same HAProxy: refused, blue not drained, nothing changed")
    func drainResumeRefusesHandChange() async throws {
        let lab = try await CutoverLab("guard-drain-hand", policy: .init(holdFor: "1s"))
        defer { lab.stopAll() }
        try await Self.runToDrained(lab)
        try await lab.haproxy.runtimeCommand("set server app/blue-1 state ready;set server app/blue-1 weight 1;set server app/green-1 weight 0")
        #expect(try await lab.liveWeights() == (1, 0))
        let watch = try DrainWatch(lab)
        let drain = try await lab.cli(["drain", "blue", "--policy", "test"])
        let (violations, _) = await watch.stop()
        #expect(drain.exitCode == 1, "\(drain.stdout) \(drain.stderr)")
        #expect(drain.stdout.contains("someone changed them") && drain.stdout.contains("nothing was changed"), "\(drain.stdout) \(drain.stderr)")
        #expect(violations.isEmpty, "\(violations.prefix(3))")
        #expect(try await lab.liveWeights() == (1, 0), "the person's weights are left as they are")
        #expect(try await lab.blueInDrain() == false)
    }

    @Test("no loadable libcurl: a run with a Prometheus gate and health URLs is refused in preflight naming it, nothing changed on HAProxy")
    func noLibcurlRefusedInPreflight() async throws {
        let lab = try await CutoverLab("guard-no-libcurl", policy: .init(prometheusGate: true))
        defer { lab.stopAll() }
        // libcurl is loaded on the first HTTP request: a file that is no library where the
        // loader looks first makes that load fail, as a machine without libcurl4 would.
        let bogus = lab.folder.appendingPathComponent("bogus-lib")
        try FileManager.default.createDirectory(at: bogus, withIntermediateDirectories: true)
        try Data("not a library".utf8).write(to: bogus.appendingPathComponent("libcurl.so.4"))
        let before = try await lab.liveWeights()
        let refused = try await runSwitchover(["run", "blue", "green", "--policy", "test", "--until", "promoted"] + lab.globalArguments,
                                              cwd: lab.folder, extraEnvironment: ["LD_LIBRARY_PATH": bogus.path])
        let said = refused.stdout + refused.stderr
        #expect(refused.exitCode == 2, "\(said)")
        #expect(said.contains("gates over HTTP (haproxy-up): cannot load libcurl.so.4"), "\(said)")
        #expect(said.contains("health") && said.contains("cannot load libcurl.so.4"), "the health checks name it too: \(said)")
        #expect(try await lab.liveWeights() == before, "nothing was changed")
    }

    @Test("green's server in HAProxy's drain state: run refuses in preflight, and a promoted run's blue is not drained onto it")
    func greenInDrainState() async throws {
        let lab = try await CutoverLab("guard-green-drain", policy: .init(holdFor: "1s"))
        defer { lab.stopAll() }
        // Weights alone would say green takes its share; in drain state it takes none (503s).
        try await lab.haproxy.runtimeCommand("set server app/green-1 state drain")
        let before = try await lab.liveWeights()
        let refused = try await lab.cli(["run", "blue", "green", "--policy", "test", "--until", "promoted"])
        #expect(refused.exitCode == 2, "\(refused.stdout) \(refused.stderr)")
        #expect((refused.stdout + refused.stderr).contains("green-1 in drain state"), "\(refused.stdout) \(refused.stderr)")
        #expect(try await lab.liveWeights() == before, "nothing was changed")

        try await lab.haproxy.runtimeCommand("set server app/green-1 state ready")
        try lab.startLoad(seconds: 25)
        let promoted = try await lab.cli(["run", "blue", "green", "--policy", "test", "--until", "promoted"])
        #expect(promoted.exitCode == 0, "\(promoted.stdout) \(promoted.stderr)")
        try await lab.haproxy.runtimeCommand("set server app/green-1 state drain")
        let drain = try await lab.cli(["drain", "blue", "--policy", "test"])
        try await lab.haproxy.runtimeCommand("set server app/green-1 state ready")
        #expect(drain.exitCode == 1, "\(drain.stdout) \(drain.stderr)")
        #expect((drain.stdout + drain.stderr).contains("green-1 in drain state"), "\(drain.stdout) \(drain.stderr)")
        #expect(try await lab.blueInDrain() == false, "blue is never drained while green takes no new traffic")
    }

    @Test("a promoted run resumes its drain with blue's health endpoint failing: past promotion only green's health and the weights are checked")
    func resumeAfterPromotionIgnoresBlueHealth() async throws {
        let lab = try await CutoverLab("guard-resume-promoted", policy: .init(holdFor: "1s"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 25)
        let promoted = try await lab.cli(["run", "blue", "green", "--policy", "test", "--until", "promoted"])
        #expect(promoted.exitCode == 0, "\(promoted.stdout) \(promoted.stderr)")
        // Blue is on its way out: its health answers 503 (it is still up, its sessions end).
        try lab.blue.fail(true)
        let drained = try await lab.cli(["run", "blue", "green", "--policy", "test", "--until", "drained"])
        #expect(drained.exitCode == 0, "\(drained.stdout) \(drained.stderr)")
        #expect(try lab.state()?.phase == .drained)

        // Green's health still decides: failing, the resume is refused and nothing changes.
        let other = try await CutoverLab("guard-resume-promoted-green", policy: .init(holdFor: "1s"))
        defer { other.stopAll() }
        try other.startLoad(seconds: 25)
        #expect(try await other.cli(["run", "blue", "green", "--policy", "test", "--until", "promoted"]).exitCode == 0)
        try other.green.fail(true)
        let refused = try await other.cli(["run", "blue", "green", "--policy", "test", "--until", "drained"])
        try other.green.fail(false)
        #expect(refused.exitCode == 2, "\(refused.stdout) \(refused.stderr)")
        #expect(refused.stderr.contains("cluster green: health"), "\(refused.stderr)")
        #expect(try other.state()?.phase == .promoted)
        #expect(try await other.blueInDrain() == false)
    }

    @Test("a coordinator that saw HAProxy restart, journaled the new process and died before writing the weights again: the resumed run writes them, never refuses forever")
    func resumeAfterJournaledRestart() async throws {
        let lab = try await CutoverLab("guard-journaled-restart", policy: .init(holdFor: "1s"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 25)
        let promoted = try await lab.cli(["run", "blue", "green", "--policy", "test", "--until", "promoted"])
        #expect(promoted.exitCode == 0, "\(promoted.stdout) \(promoted.stderr)")
        // What the dead coordinator journaled: the restarted process as the one it reads, and an
        // unrepaired restart (the fault test found this after a SIGKILL at that moment).
        try await lab.haproxy.restart(crash: true)
        let restarted = try await lab.driver().currentWeights()
        #expect(restarted.assignment.toTotal == 0, "a restarted HAProxy forgot green's weight")
        let journal = try lab.journal()
        let run = try #require(try journal.latestRun())
        var state = try #require(try lab.state())
        state.loadBalancer = restarted.instance
        state.drift = DriftEpisode(since: Instant(Date()), restarted: true, differences: ["the load balancer restarted"])
        try journal.saveState(run: run.id, at: Instant(Date()), state)

        let resumed = try await lab.cli(["run", "blue", "green", "--policy", "test", "--until", "promoted"])
        #expect(resumed.exitCode == 0, "\(resumed.stdout) \(resumed.stderr)")
        let live = try await lab.liveWeights()
        #expect(live.blue == 0 && live.green > 0, "green's weights written again: blue \(live.blue), green \(live.green)")
    }

    // MARK: - 2. decommission on fresh evidence only

    @Test("decommission with the runtime API gone or frozen refuses on stale evidence (exit 1) and records nothing; --force --reason records it")
    func decommissionNeedsFreshEvidence() async throws {
        let lab = try await CutoverLab("guard-decommission", policy: .init(holdFor: "1s"))
        defer { lab.stopAll() }
        try await Self.runToDrained(lab)
        try await lab.haproxy.restart()  // blue back at full weight, as in the report

        // The admin socket moved away: connecting fails at once.
        let away = lab.haproxy.socketPath + ".away"
        try FileManager.default.moveItem(atPath: lab.haproxy.socketPath, toPath: away)
        let moved = try await lab.cli(["decommission", "blue"])
        #expect(moved.exitCode == 1, "\(moved.stdout) \(moved.stderr)")
        #expect(moved.stdout.contains("refused") && moved.stdout.contains("no fresh evidence"), "\(moved.stdout)")
        #expect(try lab.state()?.phase == .drained, "nothing recorded")
        try FileManager.default.moveItem(atPath: away, toPath: lab.haproxy.socketPath)

        // HAProxy frozen: the socket accepts and never answers.
        lab.haproxy.signal(SIGSTOP)
        let frozen = try await lab.cli(["decommission", "blue"])
        lab.haproxy.signal(SIGCONT)
        #expect(frozen.exitCode == 1, "\(frozen.stdout) \(frozen.stderr)")
        #expect(frozen.stdout.contains("no fresh evidence"), "\(frozen.stdout)")
        #expect(try lab.state()?.phase == .drained)

        // Answering again: the fresh sample shows blue's weight back, so it is not drained.
        let fresh = try await lab.cli(["decommission", "blue"])
        #expect(fresh.exitCode == 1, "\(fresh.stdout) \(fresh.stderr)")
        #expect(fresh.stdout.contains("live weight is 1, not 0"), "\(fresh.stdout)")
        #expect(try lab.state()?.phase == .draining)
        #expect(try lab.state()?.decommissionedAt == nil)
        // A refusing command moves nothing: blue keeps the weight the restart gave it, not drained.
        #expect(try await lab.liveWeights() == (1, 0))
        #expect(try await lab.blueInDrain() == false)

        let forced = try await lab.cli(["decommission", "blue", "--force", "--reason", "blue is being rebuilt anyway"])
        #expect(forced.exitCode == 0, "\(forced.stdout) \(forced.stderr)")
        #expect(try lab.state()?.phase == .decommissioned)
    }

    // MARK: - 3. rollback while a resumed coordinator runs its checks

    @Test("rollback sent while a resumed coordinator probes a slow health endpoint is carried out, never refused as stale")
    func rollbackDuringResumeChecks() async throws {
        let lab = try await CutoverLab("guard-resume-rollback", policy: .init(bake: "20s", blueHealthPath: "/slowhealth"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 40)
        let first = try lab.startCoordinator()
        try await lab.waitFor("step 1 baking", timeout: 30, process: first) { $0.step == 1 && $0.stepStartedAt != nil }
        first.signal(SIGKILL)
        _ = await first.waitForExit(timeout: 5)

        let second = try lab.startCoordinator()
        defer { second.stopInBackground() }
        try await Task.sleep(for: .milliseconds(700))  // the resumed coordinator holds the lock, probing health
        let status = try await lab.statusJSON()
        #expect((status["coordinator"] as? [String: Any])?["running"] as? Bool == true)
        let rollback = try await lab.cli(["rollback", "--reason", "operator saw errors"])
        #expect(rollback.exitCode == 0, "\(rollback.stdout) \(rollback.stderr)")
        #expect(!rollback.stdout.contains("no coordinator"), "\(rollback.stdout)")
        let exit = try await lab.waitForExit(second)
        #expect(exit == 1, "rolled back: \(second.logTail(lines: 20))")
        let state = try #require(try lab.state())
        #expect(state.phase == .rolledBack && state.rollbackVerified)
        let (blue, green) = try await lab.liveWeights()
        #expect(blue > 0 && green == 0)
    }

    // MARK: - 4. HAProxy restarted while draining

    @Test("HAProxy SIGKILLed and restarted while draining: the coordinator writes 100% to green and the drain state again, then blue drains")
    func restartWhileDraining() async throws {
        let lab = try await CutoverLab("guard-restart-draining", policy: .init(holdFor: "3s", drainTimeout: "40s"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 30)
        let coordinator = try lab.startCoordinator(until: "drained")
        defer { coordinator.stopInBackground() }
        try await lab.waitFor("draining", timeout: 40, process: coordinator) { $0.phase == .draining && $0.drain?.lastSample != nil }
        try await lab.haproxy.restart(crash: true)
        let watch = try DrainWatch(lab)
        let exit = try await lab.waitForExit(coordinator)
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
        let lab = try await CutoverLab("guard-timeout-message", policy: .init(holdFor: "30s", drainTimeout: "3s"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 20)
        let run = try await lab.cli(["run", "blue", "green", "--policy", "test", "--until", "drained"])
        #expect(run.exitCode == 1, "\(run.stdout) \(run.stderr)")
        #expect(run.stdout.contains("drain timed out"), "\(run.stdout)")
        #expect(run.stdout.contains("live weights last read back 100% to green (blue 0, green "), "\(run.stdout)")
        #expect(!run.stdout.contains("all traffic stays on"), "\(run.stdout)")
    }

    // MARK: - 5. an edited policy on resume

    /// Replaces `old` with `new` in the lab's policy file, as a person editing it would.
    static func editPolicy(_ lab: CutoverLab, _ old: String, _ new: String) throws {
        let file = lab.folder.appendingPathComponent("policies/test.yaml")
        let text = try String(contentsOf: file, encoding: .utf8)
        guard text.contains(old) else { throw TestKitError("the policy has no '\(old)':\n\(text)") }
        try text.replacingOccurrences(of: old, with: new).write(to: file, atomically: true, encoding: .utf8)
    }

    @Test("resume under an edited policy refuses (exit 2) naming what changed and changes nothing; --adopt-policy adopts only once the checks pass, and never steps back")
    func editedPolicyOnResume() async throws {
        let lab = try await CutoverLab("guard-policy", policy: .init(bake: "3s"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 60)
        let first = try lab.startCoordinator()
        try await lab.waitFor("step 3 baking", timeout: 40, process: first) { $0.step == 3 && $0.stepStartedAt != nil }
        first.signal(SIGINT)
        #expect(try await lab.waitForExit(first, timeout: 10) == 130)
        let atStop = try await lab.liveWeights()
        try Self.editPolicy(lab, "steps: [10, 25, 50, 100]", "steps: [10, 100]")

        let refused = try await lab.cli(["run", "blue", "green", "--policy", "test", "--until", "promoted"])
        #expect(refused.exitCode == 2, "\(refused.stdout) \(refused.stderr)")
        #expect(refused.stderr.contains("steps [10, 25, 50, 100] → [10, 100]"), "\(refused.stderr)")
        #expect(refused.stderr.contains("--adopt-policy") && refused.stderr.contains("nothing was changed"), "\(refused.stderr)")
        #expect(try await lab.liveWeights() == atStop)
        #expect(try lab.state()?.step == 3)

        // Adopting is part of resuming: when the checks before resuming fail (green unhealthy),
        // the run stays as journaled, under the policy it was journaled with.
        try lab.green.fail(true)
        let unchecked = try await lab.cli(["run", "blue", "green", "--policy", "test", "--until", "promoted", "--adopt-policy"])
        try lab.green.fail(false)
        #expect(unchecked.exitCode == 2, "\(unchecked.stdout) \(unchecked.stderr)")
        #expect(unchecked.stderr.contains("cluster green: health"), "refused for green's health: \(unchecked.stderr)")
        #expect(try await lab.liveWeights() == atStop)
        #expect(try lab.state()?.step == 3, "the journaled step, not the adopted policy's")
        #expect(try !lab.events().contains { $0.kind == "policy" && $0.detail.contains("adopted") },
                "no adoption journaled while the checks failed")

        // Adopted: from 50% the next new step at or above it is 100%; the share never goes down.
        let (adopted, lowest, _, reads) = try await lab.watchingShare(every: .milliseconds(20)) {
            try await lab.cli(["run", "blue", "green", "--policy", "test", "--until", "promoted", "--adopt-policy"])
        }
        #expect(reads > 0, "HAProxy was read while the adopted run went on")
        #expect(adopted.exitCode == 0, "\(adopted.stdout) \(adopted.stderr)")
        #expect(adopted.stderr.contains("adopting the edited policy"), "\(adopted.stderr)")
        let share50 = WeightTranslation.haproxy.weights(percentToTarget: 50, from: ["blue-1"], to: ["green-1"]).effectivePercentToTarget
        #expect(lowest >= share50 - 1e-9, "never a step back from 50%: lowest read \(lowest)%")
        let state = try #require(try lab.state())
        #expect(state.phase == .promoted && state.step == 2, "step 2 of the new [10, 100]")
        #expect(try lab.events().contains { $0.kind == "policy" && $0.detail.contains("adopted") })
    }

    // MARK: - 6. the offline rollback with a full disk

    /// The journal's folder on a small tmpfs of its own (16 MiB), to fill up or make read-only
    /// once a run is under way; the caller unmounts it. Needs root: fails loudly, never skips.
    static func stateOnTmpfs(_ lab: CutoverLab) async throws -> String {
        let stateDirectory = (lab.statePath as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        let mount = try await Command.run("/bin/mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", stateDirectory])
        guard mount.status == 0 else {
            throw TestKitError("mounting a tmpfs needs root (this test fails loudly, never skips): \(mount.output)")
        }
        return stateDirectory
    }

    /// A coordinator under `hey` load, once step 1 is baking.
    static func bakingStep1(_ lab: CutoverLab) async throws -> ManagedProcess {
        try lab.startLoad(seconds: 40)
        let coordinator = try lab.startCoordinator()
        try await lab.waitFor("step 1 baking", timeout: 30, process: coordinator) { $0.step == 1 && $0.stepStartedAt != nil }
        return coordinator
    }

    @Test("offline rollback on a full disk rolls back anyway, verified by read-back, and says the journal is behind; later it records it")
    func rollbackOnFullDisk() async throws {
        let lab = try await CutoverLab("guard-full-disk", policy: .init(bake: "20s"))
        defer { lab.stopAll() }
        let stateDirectory = try await Self.stateOnTmpfs(lab)
        defer { lazyUnmount(stateDirectory) }
        let coordinator = try await Self.bakingStep1(lab)
        coordinator.signal(SIGKILL)
        _ = await coordinator.waitForExit(timeout: 5)
        #expect(try await lab.liveWeights().green > 0)

        let filler = stateDirectory + "/filler"
        let fill = try await Command.run("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=64k"])
        #expect(fill.output.contains("No space left"), "\(fill.output)")

        let rollback = try await lab.cli(["rollback", "--reason", "disk full, green misbehaving"])
        #expect(rollback.exitCode == 0, "\(rollback.stdout) \(rollback.stderr)")
        #expect(rollback.stdout.contains("WITHOUT the journal") && rollback.stdout.contains("it is behind"), "\(rollback.stdout)")
        let (blue, green) = try await lab.liveWeights()
        #expect(blue > 0 && green == 0, "all traffic back on blue, as read back")
        #expect(try lab.state()?.phase == .shifting, "the journal is behind, as the message said")

        try FileManager.default.removeItem(atPath: filler)
        let again = try await lab.cli(["rollback", "--reason", "record it"])
        #expect(again.exitCode == 0, "\(again.stdout) \(again.stderr)")
        let state = try #require(try lab.state())
        #expect(state.phase == .rolledBack && state.rollbackVerified)
    }

    @Test("offline rollback with a cleanly closed journal on a full disk, then on a read-only filesystem: rolls back anyway, read back, and says the journal is behind")
    func rollbackWithUnopenableJournal() async throws {
        let lab = try await CutoverLab("guard-journal-ro", policy: .init(bake: "20s"))
        defer { lab.stopAll() }
        let stateDirectory = try await Self.stateOnTmpfs(lab)
        defer { lazyUnmount(stateDirectory) }
        let coordinator = try await Self.bakingStep1(lab)
        // Stopped cleanly, and read once more: the journal is checkpointed and closed, with no
        // write-ahead log or shared-memory file left to open it through.
        coordinator.signal(SIGINT)
        #expect(try await lab.waitForExit(coordinator, timeout: 10) == 130)
        #expect(try await lab.cli(["status"]).exitCode == 0)
        #expect(!FileManager.default.fileExists(atPath: lab.statePath + "-shm"), "closed cleanly")
        let step1 = try await lab.liveWeights()
        #expect(step1.green > 0)

        // A full disk.
        let filler = stateDirectory + "/filler"
        let fill = try await Command.run("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=64k"])
        #expect(fill.output.contains("No space left"), "\(fill.output)")
        let full = try await lab.cli(["rollback", "--reason", "disk full, green misbehaving"])
        #expect(full.exitCode == 0, "\(full.stdout) \(full.stderr)")
        #expect(full.stdout.contains("WITHOUT the journal") && full.stdout.contains("it is behind"), "\(full.stdout)")
        let afterFull = try await lab.liveWeights()
        #expect(afterFull.blue > 0 && afterFull.green == 0, "all traffic back on blue, as read back")
        try FileManager.default.removeItem(atPath: filler)

        // A read-only filesystem (green back at step 1's weights first).
        try await lab.driver().apply(percentToTarget: 10)
        let readOnly = try await Command.run("/bin/mount", ["-o", "remount,ro", stateDirectory])
        try #require(readOnly.status == 0, "\(readOnly.output)")
        let ro = try await lab.cli(["rollback", "--reason", "journal on a read-only filesystem"])
        #expect(ro.exitCode == 0, "\(ro.stdout) \(ro.stderr)")
        #expect(ro.stdout.contains("WITHOUT the journal") && ro.stdout.contains("it is behind"), "\(ro.stdout)")
        let afterReadOnly = try await lab.liveWeights()
        #expect(afterReadOnly.blue > 0 && afterReadOnly.green == 0)

        // Writable again: rollback records it.
        #expect(try await Command.run("/bin/mount", ["-o", "remount,rw", stateDirectory]).status == 0)
        let again = try await lab.cli(["rollback", "--reason", "record it"])
        #expect(again.exitCode == 0, "\(again.stdout) \(again.stderr)")
        let state = try #require(try lab.state())
        #expect(state.phase == .rolledBack && state.rollbackVerified)
    }

    @Test("a typo in another policy file does not block the emergency rollback of a journaled run; it still refuses run (exit 2)")
    func rollbackDespiteAnotherFilesTypo() async throws {
        let lab = try await CutoverLab("guard-other-typo", policy: .init(bake: "20s"))
        defer { lab.stopAll() }
        let coordinator = try await Self.bakingStep1(lab)
        coordinator.signal(SIGKILL)
        _ = await coordinator.waitForExit(timeout: 5)
        // Another team's policy, half edited.
        try "apiVersion: switchover/v1\nkind: Policy\nmetadata:\n  name: other\nspec:\n  stepz: [10]\n"
            .write(to: lab.folder.appendingPathComponent("policies/other.yaml"), atomically: true, encoding: .utf8)

        let run = try await lab.cli(["run", "blue", "green", "--policy", "test"])
        #expect(run.exitCode == 2, "\(run.stdout) \(run.stderr)")
        #expect(run.stderr.contains("other.yaml"), "\(run.stderr)")

        let rollback = try await lab.cli(["rollback", "--reason", "green misbehaving"])
        #expect(rollback.exitCode == 0, "\(rollback.stdout) \(rollback.stderr)")
        let live = try await lab.liveWeights()
        #expect(live.blue > 0 && live.green == 0)
        #expect(try lab.state()?.phase == .rolledBack)
    }

    // MARK: - 12. messages that say what is so

    @Test("a policy naming a backend HAProxy does not have: preflight says so in one line, not HAProxy's whole `show info`")
    func unknownBackend() async throws {
        let lab = try await CutoverLab("guard-backend")
        defer { lab.stopAll() }
        try Self.editPolicy(lab, "backend: app", "backend: nope")
        let run = try await lab.cli(["run", "blue", "green", "--policy", "test"])
        #expect(run.exitCode == 2, "\(run.stdout) \(run.stderr)")
        #expect(run.stderr.contains("HAProxy has no backend 'nope'"), "\(run.stderr)")
        #expect(!run.stderr.contains("Uptime_sec") && !run.stderr.contains("unreachable"), "\(run.stderr)")
    }

    @Test("run --until promoted on a drained journal: 'nothing to do' only while the weights are the journal's; after a restart it writes them again")
    func alreadyDoneChecksLiveWeights() async throws {
        let lab = try await CutoverLab("guard-already-done", policy: .init(holdFor: "1s"))
        defer { lab.stopAll() }
        try await Self.runToDrained(lab)
        let same = try await lab.cli(["run", "blue", "green", "--policy", "test", "--until", "promoted"])
        #expect(same.exitCode == 0, "\(same.stdout) \(same.stderr)")
        #expect(same.stdout.contains("nothing to do") && same.stdout.contains("read back: 100% to green"), "\(same.stdout)")

        try await lab.haproxy.restart()
        #expect(try await lab.liveWeights() == (1, 0))
        let restarted = try await lab.cli(["run", "blue", "green", "--policy", "test", "--until", "promoted"])
        #expect(restarted.exitCode == 0, "\(restarted.stdout) \(restarted.stderr)")
        #expect(!restarted.stdout.contains("nothing to do"), "\(restarted.stdout)")
        let (blue, green) = try await lab.liveWeights()
        #expect(blue == 0 && green > 0, "the journal's weights are live again")
    }

    // MARK: - the lease (issue 13)

    @Test("a coordinator whose lease is taken over between two steps journals no further intent, moves no weight (read back from HAProxy), and exits 1 saying it lost the lease")
    func leaseTakenOver() async throws {
        let lab = try await CutoverLab("guard-lease", policy: .init(bake: "3s"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 40)
        let coordinator = try lab.startCoordinator()
        defer { coordinator.stopInBackground() }
        try await lab.waitFor("step 2 baking", timeout: 30, process: coordinator) { $0.step == 2 && $0.stepStartedAt != nil }
        // Another holder takes the journal's lease (what a second coordinator does once the lock
        // file was deleted and made again): this coordinator's token is stale from now on.
        // Counted before the takeover, so a write in between cannot hide in the baseline (step 2
        // has just begun a 3 s bake: no legitimate intent falls in this moment).
        let intents = try lab.events().filter { $0.kind == "intent" }.count
        let weights = try await lab.liveWeights()
        let token = try lab.journal().takeLease(holder: "test: another coordinator", at: Instant(Date()))
        let exit = try await lab.waitForExit(coordinator, timeout: 20)
        #expect(exit == 1, "\(coordinator.logTail(lines: 20))")
        #expect(coordinator.logTail(lines: 20).contains("lost the lease"), "\(coordinator.logTail(lines: 20))")
        #expect(try lab.events().filter { $0.kind == "intent" }.count == intents, "no intent after the lease was lost")
        #expect(try await lab.liveWeights() == weights, "no weight moved at HAProxy")
        #expect(try lab.journal().leaseToken() == token)
    }
}
