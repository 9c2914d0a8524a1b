import Foundation
import SwitchoverCore
import SwitchoverRuntime
import SwitchoverStore
import SwitchoverTestKit
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The cutover lab with its journal in a real 3-member etcd (`--state etcd://.../switchover/NAME`):
/// two coordinators (`run` and `run --standby`) share it, and one of them leads.
final class HALab: @unchecked Sendable {
    let lab: CutoverLab
    let etcd: EtcdCluster
    /// The lease TTL every coordinator of the lab is started with.
    let leaseTTL = 2

    init(_ name: String, policy: CutoverLab.PolicyOptions = .init(bake: "3s"), tls: Bool = false) async throws {
        etcd = try await EtcdCluster.start(members: 3, tls: tls)
        do {
            lab = try await CutoverLab(name, policy: policy)
        } catch {
            await etcd.stop()
            throw error
        }
        lab.statePath = (tls ? "etcds://" : "etcd://") + etcd.endpoints + "/switchover/" + name
        if let files = etcd.tlsFiles {
            lab.etcdOptions = EtcdOptions(caFile: files.caFile.path, certificateFile: files.clientCertificate.path,
                                          keyFile: files.clientKey.path)
        }
    }

    func stopAll() {
        lab.stopAll()
        etcd.stopInBackground()
    }

    var tlsArguments: [String] {
        guard let files = etcd.tlsFiles else { return [] }
        return ["--etcd-cacert", files.caFile.path, "--etcd-cert", files.clientCertificate.path, "--etcd-key", files.clientKey.path]
    }

    /// `switchover run blue green --policy test --until promoted` with the lab's lease TTL.
    func coordinator(standby: Bool = false) throws -> ManagedProcess {
        try lab.startCoordinator(extraArguments: ["--lease-ttl", "\(leaseTTL)s"] + tlsArguments + (standby ? ["--standby"] : []))
    }

    func cli(_ arguments: [String]) async throws -> (exitCode: Int32, stdout: String, stderr: String) {
        try await lab.cli(arguments + tlsArguments)
    }

    /// The run's events of `kind`.
    func events(_ kind: String) throws -> [JournalEvent] {
        try lab.events().filter { $0.kind == kind }
    }

    /// Polls until some event of `kind` is journaled.
    func waitForEvent(_ kind: String, timeout: TimeInterval = 30, _ process: ManagedProcess? = nil) async throws -> JournalEvent {
        let found = await Wait.until(timeout: timeout, every: .milliseconds(50)) { (try? self.events(kind).isEmpty == false) == true }
        guard found, let event = try events(kind).first else {
            throw TestKitError("no \(kind) event within \(timeout)s\n\(process?.logTail(lines: 30) ?? "")")
        }
        return event
    }
}

@Suite("High availability: the journal in a 3-member etcd, a leader lease, fencing, a standby", .serialized)
struct HAIntegrationTests {
    @Test("the leader SIGKILLed mid-bake: the standby takes over, resumes the step and promotes; no request fails; one leader change")
    func standbyTakesOver() async throws {
        let ha = try await HALab("ha-kill")
        defer { ha.stopAll() }
        try ha.lab.startLoad(seconds: 40)
        let leader = try ha.coordinator()
        defer { leader.stopInBackground() }
        try await ha.lab.waitFor("the leader at step 1", process: leader) { $0.step >= 1 }
        let standby = try ha.coordinator(standby: true)
        defer { standby.stopInBackground() }
        let baking = try await ha.lab.waitFor("step 2 baking", process: leader) { $0.step == 2 && $0.stepStartedAt != nil }
        let status = try await ha.lab.statusJSON()
        let leaderObject = try #require(status["leader"] as? [String: Any], "status --output json names the leader: \(status)")
        #expect(leaderObject["pid"] as? Int == Int(leader.pid))
        #expect((leaderObject["id"] as? String)?.isEmpty == false && leaderObject["host"] != nil && leaderObject["since"] != nil)
        try await Task.sleep(for: .milliseconds(500))
        leader.signal(SIGKILL)
        _ = await leader.waitForExit(timeout: 5)
        let weightsAtKill = try await ha.lab.liveWeights()

        let exit = try await ha.lab.waitForExit(standby)
        #expect(exit == 0, "\(standby.logTail(lines: 30))")
        #expect(try ha.lab.state()?.phase == .promoted)
        let changes = try ha.events("leaderChanged")
        #expect(changes.count == 1, "\(changes.map(\.detail))")
        // The standby resumed the step it found: its first verified step is the one the leader
        // was killed in, at the same weights.
        let events = try ha.lab.events()
        let after = events.drop { $0.kind != "leaderChanged" }
        let firstVerified = try #require(after.first { $0.kind == "stepVerified" })
        #expect(try JSONDecoder().decode(EngineEvent.self, from: Data(firstVerified.detail.utf8)).step == baking.step)
        #expect(weightsAtKill.green > 0 && weightsAtKill.blue > 0)
        let report = try await ha.lab.loadReport()
        #expect(report.responses > 500, "\(report)")
        #expect(report.failed == 0, "\(report)")
        let (blue, green) = try await ha.lab.liveWeights()
        #expect(blue == 0 && green > 0)
        // The other commands read the etcd journal as they read a file: the report marks the
        // leader change on its timeline, and a decommission is journaled there.
        let out = ha.lab.folder.appendingPathComponent("report.html")
        let written = try await ha.cli(["report", "--out", out.path])
        #expect(written.exitCode == 0, "\(written)")
        let html = try String(contentsOf: out, encoding: .utf8)
        #expect(html.contains("leader changed") && html.contains("leaderChanged"), "the report shows the takeover")
        let decommission = try await ha.cli(["decommission", "blue", "--force", "--reason", "HA test"])
        #expect(decommission.exitCode == 0, "\(decommission)")
        #expect(try ha.lab.state()?.decommissionedAt != nil)
    }

    @Test("the leader frozen (SIGSTOP) past its TTL: the standby takes over; the old leader, continued, moves no weight, journals nothing and exits 1")
    func frozenLeaderFenced() async throws {
        let ha = try await HALab("ha-stop", policy: .init(bake: "4s"))
        defer { ha.stopAll() }
        try ha.lab.startLoad(seconds: 60)
        let leader = try ha.coordinator()
        defer {
            leader.signal(SIGCONT)
            leader.stopInBackground()
        }
        try await ha.lab.waitFor("the leader at step 1", process: leader) { $0.step >= 1 }
        let standby = try ha.coordinator(standby: true)
        defer { standby.stopInBackground() }
        try await ha.lab.waitFor("step 2 baking", process: leader) { $0.step == 2 && $0.stepStartedAt != nil }
        leader.signal(SIGSTOP)
        let change = try await ha.waitForEvent("leaderChanged", timeout: Double(ha.leaseTTL) + 10, standby)
        // The standby re-verifies step 2 (25% to green) and bakes it again for 4 s; the frozen
        // leader's bake ran out while it slept, so, were it not fenced, it would set step 3 now.
        try await ha.lab.waitFor("the standby's step 2 verified") { $0.step == 2 && $0.pendingWeights == nil && $0.stepStartedAt.map { $0 > change.at } == true }
        let eventsBefore = try ha.lab.events().count
        let (exit, lowest, highest, reads) = try await ha.lab.watchingShare {
            leader.signal(SIGCONT)
            return try await ha.lab.waitForExit(leader, timeout: 15)
        }
        #expect(exit == 1, "\(leader.logTail(lines: 20))")
        #expect(leader.logTail(lines: 20).contains("lost"), "it says it lost leadership: \(leader.logTail(lines: 20))")
        #expect(reads > 0)
        #expect(lowest == 25 && highest == 25, "HAProxy's share stayed the standby's step 2 while the old leader woke: \(lowest)...\(highest)")
        // Every event journaled meanwhile is the standby's: none says the old leader stopped or resumed.
        let meanwhile = Array(try ha.lab.events().dropFirst(eventsBefore))
        #expect(!meanwhile.contains { ["coordinatorStopped", "coordinatorStarted", "intent"].contains($0.kind) },
                "\(meanwhile.map(\.kind))")
        let final = try await ha.lab.waitForExit(standby)
        #expect(final == 0, "\(standby.logTail(lines: 30))")
        #expect(try ha.lab.state()?.phase == .promoted)
    }

    @Test("one etcd member lost: the run goes on; two lost (no quorum): it holds the weights where they are; members back: it goes on and promotes")
    func quorumLoss() async throws {
        let ha = try await HALab("ha-quorum", policy: .init(steps: [10, 25, 50, 100], bake: "2s"))
        defer { ha.stopAll() }
        try ha.lab.startLoad(seconds: 60)
        let leader = try ha.coordinator()
        defer { leader.stopInBackground() }
        try await ha.lab.waitFor("step 1 baking", process: leader) { $0.step == 1 && $0.stepStartedAt != nil }
        // The coordinator talks to the first endpoint first: lose that one.
        ha.etcd.kill(0)
        try await ha.lab.waitFor("step 2 with one member down", process: leader) { $0.step >= 2 }
        ha.etcd.kill(1)
        try await Task.sleep(for: .seconds(1))
        let held = try await ha.lab.liveWeights()
        // Longer than a bake and an interval: without a journal nothing may move.
        let (_, lowest, highest, reads) = try await ha.lab.watchingShare(every: .milliseconds(50)) {
            try await Task.sleep(for: .seconds(5))
        }
        #expect(reads > 0)
        let heldShare = Double(held.green) / Double(held.blue + held.green) * 100
        #expect(lowest == heldShare && highest == heldShare, "weights moved without quorum: \(lowest)...\(highest), held at \(held)")
        #expect(leader.isRunning, "the coordinator waits: \(leader.logTail(lines: 20))")
        #expect(leader.logTail(lines: 40).contains("journal unavailable"), "\(leader.logTail(lines: 40))")
        try await ha.etcd.startAgain(1)
        try await ha.etcd.startAgain(0)
        let exit = try await ha.lab.waitForExit(leader)
        #expect(exit == 0, "\(leader.logTail(lines: 30))")
        #expect(try ha.lab.state()?.phase == .promoted)
        let outage = try #require(try ha.events("journalUnavailable").first)
        #expect(outage.detail.contains("no weight was moved meanwhile"))
    }

    @Test("a rollback asked from a third process (`switchover rollback --state etcd://...`) during the failover is carried out by the coordinator that takes over")
    func rollbackFromThirdProcess() async throws {
        let ha = try await HALab("ha-rollback", policy: .init(bake: "5s"))
        defer { ha.stopAll() }
        try ha.lab.startLoad(seconds: 60)
        let leader = try ha.coordinator()
        defer { leader.stopInBackground() }
        try await ha.lab.waitFor("the leader at step 2", process: leader) { $0.step >= 2 && $0.pendingWeights == nil }
        let standby = try ha.coordinator(standby: true)
        defer { standby.stopInBackground() }
        try await Task.sleep(for: .milliseconds(300))
        leader.signal(SIGKILL)
        _ = await leader.waitForExit(timeout: 5)
        // Asked during the failover: the dead leader's key still stands (for up to the TTL), so
        // the command is journaled for a coordinator, and the standby, once it leads, carries it
        // out while it runs its checks before resuming.
        #expect(try ha.events("leaderChanged").isEmpty, "asked before the takeover")
        let answer = try await ha.cli(["rollback", "--reason", "pager"])
        #expect(answer.exitCode == 0, "\(answer)")
        #expect(try ha.events("leaderChanged").count == 1)
        let exit = try await ha.lab.waitForExit(standby)
        #expect(exit == 1, "rolled back: \(standby.logTail(lines: 20))")
        let (blue, green) = try await ha.lab.liveWeights()
        #expect(blue > 0 && green == 0)
        let state = try #require(try ha.lab.state())
        #expect(state.phase == .rolledBack && state.rollbackVerified)
    }

    @Test("etcds:// with client certificates from the test PKI: a whole run; without the client certificate, refused (exit 2) and nothing written")
    func tlsWithClientCertificates() async throws {
        let ha = try await HALab("ha-tls", policy: .init(steps: [50, 100], bake: "500ms"), tls: true)
        defer { ha.stopAll() }
        try ha.lab.startLoad(seconds: 20)
        let files = try #require(ha.etcd.tlsFiles)
        let refused = try await ha.lab.cli(["run", "blue", "green", "--policy", "test", "--etcd-cacert", files.caFile.path])
        #expect(refused.exitCode == 2, "\(refused)")
        #expect(refused.stderr.contains("etcd"), "\(refused.stderr)")
        #expect(try await ha.etcd.etcdctl(["get", "--prefix", "/switchover/", "--keys-only"]).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty,
                "nothing written")
        let run = try ha.coordinator()
        defer { run.stopInBackground() }
        let exit = try await ha.lab.waitForExit(run)
        #expect(exit == 0, "\(run.logTail(lines: 30))")
        #expect(try ha.lab.state()?.phase == .promoted)
    }

    @Test("bad --state: a malformed etcd:// URL, no endpoint reachable, a prefix holding another run or data not Switchover's: exit 2, nothing written, HAProxy untouched")
    func badInput() async throws {
        let ha = try await HALab("ha-bad")
        defer { ha.stopAll() }
        let before = try await ha.lab.liveWeights()
        func run(state: String) async throws -> (exitCode: Int32, stdout: String, stderr: String) {
            try await runSwitchover(["run", "blue", "green", "--policy", "test",
                                     "--clusters", ha.lab.folder.appendingPathComponent("clusters").path,
                                     "--policies", ha.lab.folder.appendingPathComponent("policies").path,
                                     "--state", state], cwd: ha.lab.folder)
        }
        for (state, says) in [("etcd://127.0.0.1/x", "HOST:PORT"), ("etcd://127.0.0.1:2379", "PREFIX"), ("etcd://:2379/x", "host"),
                              ("etcd://127.0.0.1:99999/x", "port"), ("etcd://a:1,,b:2/x", "empty endpoint")] {
            let result = try await run(state: state)
            #expect(result.exitCode == 2 && result.stderr.contains(says), "\(state): \(result)")
        }
        let closed = try Loopback.freePort()
        let unreachable = try await run(state: "etcd://127.0.0.1:\(closed)/x")
        #expect(unreachable.exitCode == 2 && unreachable.stderr.contains("etcd unavailable"), "\(unreachable)")

        _ = try await ha.etcd.etcdctl(["put", "/foreign/config", "someone else's"])
        let foreign = try await run(state: "etcd://\(ha.etcd.endpoints)/foreign")
        #expect(foreign.exitCode == 2 && foreign.stderr.contains("not a Switchover journal"), "\(foreign)")
        #expect(try await ha.etcd.etcdctl(["get", "--prefix", "/foreign", "--keys-only"]).split(separator: "\n").filter { !$0.isEmpty } == ["/foreign/config"],
                "nothing written under the foreign prefix")

        // Another run under way in the prefix: green → blue under the same policy.
        let other = try StateLocation(parsing: ha.lab.statePath, etcd: EtcdOptions()).journal()
        let id = try other.startRun(RunRecord(from: "green", to: "blue", policy: "test", startedAt: Instant(Date()), pid: 1))
        var shifting = CutoverState.initial
        shifting.phase = .shifting
        shifting.step = 1
        try other.saveState(run: id, at: Instant(Date()), shifting)
        let conflict = try await run(state: ha.lab.statePath)
        #expect(conflict.exitCode == 2 && conflict.stderr.contains("not over"), "\(conflict)")
        #expect(try other.latestRun()?.id == id, "no run started")
        let after = try await ha.lab.liveWeights()
        #expect(after == before, "HAProxy untouched")
    }
}
