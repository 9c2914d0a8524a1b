import Foundation
import Logging
import Synchronization
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverRuntime
import SwitchoverStore
import SwitchoverTestKit
import Testing

/// A coordinator in this process against the lab's real HAProxy, started from a hand-made
/// journaled state: a rollback that must finish whole (FROM out of drain, weights read back),
/// an offline rollback of an unfinished one, and a run resumed before its preflight.
@Suite
struct RollbackCompletionTests {
    static func policy(_ lab: CutoverLab) throws -> Policy {
        let file = lab.folder.appendingPathComponent("policies/test.yaml").path
        return try #require(ConfigLoader.loadFile(file, drivers: DriverRegistry.standard.descriptions).policy)
    }

    static func coordinator(_ lab: CutoverLab, _ policy: Policy, state: CutoverState, journal: MemoryJournal,
                            router: any WeightRouter, observer: any TrafficObserver, unfinished: Action? = nil) throws -> (Coordinator, Int64) {
        let runID = try journal.startRun(RunRecord(from: "blue", to: "green", policy: "test",
                                                   startedAt: Coordinator.wallClock(), pid: getpid()))
        if let unfinished { _ = try journal.beginIntent(run: runID, at: Coordinator.wallClock(), unfinished) }
        let coordinator = Coordinator(engine: CutoverEngine(policy: policy, from: "blue", to: "green"), runID: runID,
                                      journal: journal, router: router, observer: observer, sources: [:], state: state,
                                      unfinishedIntents: try journal.unfinishedIntents(run: runID), reporter: LogReporter(logger: lab.logger), logger: lab.logger)
        return (coordinator, runID)
    }

    /// blue-1's status in HAProxy's `show stat` (`UP`, `DRAIN`, ...).
    static func blueStatus(_ lab: CutoverLab) async throws -> ServerHealth? {
        try await lab.driver().stats().clusters["blue"]?.servers.first { $0.server == "blue-1" }
    }

    @Test("a rollback from the drain whose `set server … state ready` fails is not verified until blue is ready again")
    func rollbackVerifiesReadiness() async throws {
        let lab = try await CutoverLab("fixroll-ready")
        defer { lab.stopAll() }
        let policy = try Self.policy(lab)
        let driver = try lab.driver()
        try await driver.apply(percentToTarget: 100)
        try await driver.setDrain(cluster: "blue")
        #expect(try await Self.blueStatus(lab)?.serving == false, "blue-1 should start in drain")

        let now = Coordinator.wallClock()
        var state = CutoverState.initial
        state.phase = .draining
        state.step = policy.steps.count
        state.percentToTarget = 100
        state.lastIntent = 4
        state.promotedAt = now
        state.drain = DrainDetector(spec: policy.drain).start(at: now)
        let journal = MemoryJournal()
        let flaky = ReadyFailsOnce(driver)
        let (coordinator, _) = try Self.coordinator(lab, policy, state: state, journal: journal, router: flaky, observer: driver)
        let id = try journal.submitCommand("rollback", arguments: "{}", at: now)
        let final = try await coordinator.runOffline(.rollback(reason: "green regression"), id: id)

        #expect(flaky.readyCalls.withLock { $0 } >= 2, "the failed setReady was sent again")
        #expect(final.phase == .rolledBack)
        #expect(final.rollbackVerified)
        let blue = try await Self.blueStatus(lab)
        #expect(blue?.serving == true, "blue-1 is \(blue?.status ?? "missing") after a verified rollback")
        let live = try await lab.liveWeights()
        #expect(live.blue > 0 && live.green == 0)
    }

    @Test("an offline rollback after a coordinator died between a step's intent and its result never pushes green up first")
    func offlineRollbackSupersedesUnfinishedStep() async throws {
        let lab = try await CutoverLab("fixroll-step")
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 30)
        // The second weight intent is step 2's (25%): the process exits right after journaling it.
        let first = try lab.startCoordinator(environment: ["SWITCHOVER_TEST_CRASH_AFTER_INTENT": "2"])
        #expect(try await lab.waitForExit(first, timeout: 30) == 137, "\(first.logTail(lines: 20))")
        let step1 = WeightTranslation.haproxy.weights(percentToTarget: 10, from: ["blue-1"], to: ["green-1"])
        #expect(try await lab.liveWeights().green == step1.toTotal, "step 2 was journaled, never applied")

        let (result, _, highest, reads) = try await lab.watchingShare(every: .milliseconds(5)) {
            try await lab.cli(["rollback", "--reason", "green misbehaves"])
        }
        #expect(reads > 0, "HAProxy was read while the rollback ran")
        #expect(result.exitCode == 0, "exit \(result.exitCode): \(result.stdout) \(result.stderr)")
        #expect(highest <= step1.effectivePercentToTarget + 1e-9,
                "green never got more than step 1's share on the way back: highest read \(highest)%")
        let live = try await lab.liveWeights()
        #expect(live.blue > 0 && live.green == 0, "live weights blue \(live.blue), green \(live.green)")
        let run = try #require(try lab.journal().latestRun())
        #expect(try lab.journal().unfinishedIntents(run: run.id).isEmpty, "step 2's intent is closed as superseded")
        #expect(try lab.events().contains { $0.kind == "result" && $0.detail.contains("superseded") })
    }

    @Test("an offline rollback of a rollback left unfinished finishes it and reads it back")
    func offlineRollbackFinishesUnfinishedOne() async throws {
        let lab = try await CutoverLab("fixroll-offline")
        defer { lab.stopAll() }
        let policy = try Self.policy(lab)
        let driver = try lab.driver()
        try await driver.apply(percentToTarget: 50)

        // The coordinator died after journaling the rollback's intent, before applying it.
        let now = Coordinator.wallClock()
        var state = CutoverState.initial
        state.phase = .rolledBack
        state.step = 0
        state.percentToTarget = 50
        state.lastIntent = 3
        // PendingWeights has no public initializer: the engine makes them. Decode one as journaled.
        state.pendingWeights = try JSONDecoder().decode(PendingWeights.self, from: Data(
            #"{"intent":3,"percentToTarget":0,"step":0,"purpose":"rollback","issuedAt":\#(now.millisecondsSinceEpoch)}"#.utf8))
        let journal = MemoryJournal()
        let (coordinator, runID) = try Self.coordinator(
            lab, policy, state: state, journal: journal, router: driver, observer: driver,
            unfinished: .setWeights(intent: 3, percentToTarget: 0, step: 0, purpose: .rollback))
        let id = try journal.submitCommand("rollback", arguments: "{}", at: now)
        let final = try await coordinator.runOffline(.rollback(reason: nil), id: id)

        #expect(final.rollbackVerified)
        #expect(final.pendingWeights == nil)
        #expect(try journal.unfinishedIntents(run: runID).isEmpty, "the journal's unfinished intent was finished, not left")
        let live = try await lab.liveWeights()
        #expect(live.blue > 0 && live.green == 0, "live weights blue \(live.blue), green \(live.green)")
    }

    @Test("`switchover rollback` with no coordinator finishes a rollback left unfinished and exits 0")
    func offlineRollbackCommandExitsZeroWhenVerified() async throws {
        let lab = try await CutoverLab("fixroll-cli")
        defer { lab.stopAll() }
        try await lab.driver().apply(percentToTarget: 50)
        let now = Coordinator.wallClock()
        var state = CutoverState.initial
        state.phase = .rolledBack
        state.step = 0
        state.percentToTarget = 50
        state.lastIntent = 3
        state.pendingWeights = try JSONDecoder().decode(PendingWeights.self, from: Data(
            #"{"intent":3,"percentToTarget":0,"step":0,"purpose":"rollback","issuedAt":\#(now.millisecondsSinceEpoch)}"#.utf8))
        try FileManager.default.createDirectory(atPath: (lab.statePath as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        let runID: Int64
        do {
            let journal = try lab.journal()
            runID = try journal.startRun(RunRecord(from: "blue", to: "green", policy: "test", startedAt: now, pid: getpid()))
            _ = try journal.beginIntent(run: runID, at: now, .setWeights(intent: 3, percentToTarget: 0, step: 0, purpose: .rollback))
            try journal.saveState(run: runID, at: now, state)
        }

        let result = try await lab.cli(["rollback", "--reason", "finish it"])
        #expect(result.exitCode == 0, "exit \(result.exitCode): \(result.stdout) \(result.stderr)")
        #expect(try #require(try lab.state()).rollbackVerified)
        #expect(try lab.journal().unfinishedIntents(run: runID).isEmpty)
        let live = try await lab.liveWeights()
        #expect(live.blue > 0 && live.green == 0, "live weights blue \(live.blue), green \(live.green)")
    }

    @Test("`run` resumes an unverified rollback from the drain with green's health failing: blue ready, all traffic on blue (exit 1)")
    func runFinishesRollbackDespiteFailingHealth() async throws {
        let lab = try await CutoverLab("fixroll-resume")
        defer { lab.stopAll() }
        let policy = try Self.policy(lab)
        let driver = try lab.driver()
        try await driver.apply(percentToTarget: 100)
        try await driver.setDrain(cluster: "blue")
        // The coordinator died right after the rollback began: green still has everything,
        // blue is in drain, and green's health no longer answers.
        let now = Coordinator.wallClock()
        var state = CutoverState.initial
        state.phase = .rolledBack
        state.step = 0
        state.percentToTarget = 100
        state.lastIntent = 5
        state.promotedAt = now
        state.drain = DrainDetector(spec: policy.drain).start(at: now)
        try FileManager.default.createDirectory(atPath: (lab.statePath as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        do {
            let journal = try lab.journal()
            let run = try journal.startRun(RunRecord(from: "blue", to: "green", policy: "test", startedAt: now, pid: getpid()))
            try journal.saveState(run: run, at: now, state)
        }
        await lab.green.stop()

        let result = try await lab.cli(["run", "blue", "green", "--policy", "test", "--until", "promoted"])
        #expect(result.exitCode == 1, "exit \(result.exitCode): \(result.stdout) \(result.stderr)")
        #expect(result.stdout.contains("rolled back"))
        let final = try #require(try lab.state())
        #expect(final.rollbackVerified)
        let blue = try await Self.blueStatus(lab)
        #expect(blue?.serving == true, "blue-1 is \(blue?.status ?? "missing")")
        let live = try await lab.liveWeights()
        #expect(live.blue > 0 && live.green == 0, "live weights blue \(live.blue), green \(live.green)")
    }

    @Test("`switchover run` resuming a run journaled in preflight runs the preflight and starts step 1")
    func runCommandResumesInPreflight() async throws {
        let lab = try await CutoverLab("fixroll-runpre")
        defer { lab.stopAll() }
        var state = CutoverState.initial
        state.phase = .preflight
        try FileManager.default.createDirectory(atPath: (lab.statePath as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        do {
            let journal = try lab.journal()
            let now = Coordinator.wallClock()
            let run = try journal.startRun(RunRecord(from: "blue", to: "green", policy: "test", startedAt: now, pid: getpid()))
            try journal.saveState(run: run, at: now, state)
        }
        let coordinator = try lab.startCoordinator()
        defer { coordinator.stopInBackground() }
        try await lab.waitFor("step 1 verified", timeout: 15, process: coordinator) { $0.phase == .shifting && $0.stepStartedAt != nil }
        await coordinator.stop()
    }

    @Test("a run resumed before its preflight was answered gets the resume's preflight and starts step 1")
    func resumeBeforePreflightStarts() async throws {
        let lab = try await CutoverLab("fixroll-preflight")
        defer { lab.stopAll() }
        let policy = try Self.policy(lab)
        var state = CutoverState.initial
        state.phase = .preflight  // journaled by the first tick; the coordinator died before the answer
        let journal = MemoryJournal()
        let driver = try lab.driver()
        let (coordinator, _) = try Self.coordinator(lab, policy, state: state, journal: journal,
                                                    router: driver, observer: driver)
        let task = Task { try await coordinator.run(preflight: nil, resumeCheck: { PreflightOutcome(result: .passed, trustReportJSON: nil) }) }
        defer { task.cancel() }
        let deadline = Date().addingTimeInterval(10)
        var current = await coordinator.currentState
        while Date() < deadline, !(current.phase == .shifting && current.stepStartedAt != nil) {
            try await Task.sleep(for: .milliseconds(50))
            current = await coordinator.currentState
        }
        #expect(current.phase == .shifting, "still \(current.phase.rawValue) after 10 s")
        #expect(current.step == 1)
        #expect(current.stepStartedAt != nil, "step 1's weights read back")
        task.cancel()
        #expect(try await task.value == .stopped)
        let live = try await lab.liveWeights()
        #expect(live.green > 0, "step 1 sends some traffic to green")
    }
}

/// The lab's real HAProxy driver, except that the first `setReady` fails the way a runtime API
/// command that went unanswered would (nothing is sent to HAProxy then).
final class ReadyFailsOnce: WeightRouter {
    let inner: HAProxyLoadBalancer
    let readyCalls = Mutex(0)

    init(_ inner: HAProxyLoadBalancer) { self.inner = inner }

    var driver: String { inner.driver }
    var address: String { inner.address }
    var translation: WeightTranslation { inner.translation }
    var capabilities: RouterCapabilities { inner.capabilities }
    var fromCluster: ClusterServers { inner.fromCluster }
    var toCluster: ClusterServers { inner.toCluster }
    func currentWeights() async throws -> LiveWeights { try await inner.currentWeights() }
    func apply(_ assignment: WeightAssignment) async throws -> LiveWeights { try await inner.apply(assignment) }
    func setDrain(cluster: String) async throws { try await inner.setDrain(cluster: cluster) }
    func setReady(cluster: String) async throws {
        let call = readyCalls.withLock { calls in
            calls += 1
            return calls
        }
        if call == 1 {
            throw LoadBalancerError(.readBackMismatch, driver: driver, address: address,
                                    message: "test: the first set server state ready went unanswered")
        }
        try await inner.setReady(cluster: cluster)
    }
}
