import Foundation
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverStore
import SwitchoverTestKit
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Blue's drain after a cutover, the decommission guard and rollback after promotion, through
/// the built binary against real HAProxy and nginx.
///
/// What holds blue open: in HAProxy's HTTP mode a server's `scur` counts streams (requests in
/// flight, tunnels), not idle client connections. An idle keep-alive connection holds nothing
/// on blue (its next request is balanced again, to green), so the tests hold blue with a
/// request still in flight on a keep-alive connection: `GET /slow`, a long download (nginx
/// sends it at 1 KB/s). An upload does not work for this: nginx answers `return 200` at once and
/// drops the unread body after its lingering timeout (5 s), ending the stream.
@Suite
struct DrainIntegrationTests {
    /// Pins requests carrying `X-Pin: blue` to blue-1 (a draining server still takes them).
    static let pin = ["use-server blue-1 if { hdr(x-pin) -m str blue }"]

    /// A keep-alive `GET /slow` through HAProxy, left open: the download is in flight on blue.
    static func download(_ lab: CutoverLab) throws -> HeldConnection {
        try HeldConnection(port: lab.haproxy.port,
                           send: "GET /slow HTTP/1.1\r\nHost: lab\r\nConnection: keep-alive\r\n\r\n")
    }

    static func blueStats(_ lab: CutoverLab) async throws -> ClusterStats {
        try #require(try await lab.driver().stats().clusters["blue"])
    }

    static func intents(_ lab: CutoverLab, action: String) throws -> [JournalEvent] {
        try lab.events().filter { $0.kind == "intent" && $0.detail.contains("\"action\":\"\(action)\"") }
    }

    @Test("a request in flight on blue keeps it draining while open and for holdFor after; an idle keep-alive holds nothing")
    func inFlightHoldsDrain() async throws {
        let lab = try await CutoverLab("drain-held", policy: .init(holdFor: "2s"))
        defer { lab.stopAll() }
        let held = try Self.download(lab)
        defer { held.close() }
        // A client that made one request and keeps its keep-alive connection open.
        let idle = try HeldConnection(port: lab.haproxy.port, send: "GET / HTTP/1.1\r\nHost: lab\r\n\r\n")
        defer { idle.close() }
        #expect(await idle.receive().contains("blue-1"))
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await Self.blueStats(lab).activeSessions == 1, "only the download is a session on blue")
        try lab.startLoad(seconds: 45)  // green's gate needs traffic

        let coordinator = try lab.startCoordinator(until: nil)  // the policy has a drain section: goal drained
        defer { coordinator.stopInBackground() }
        let draining = try await lab.waitFor("draining", process: coordinator) { $0.phase == .draining && $0.drain?.lastSample != nil }
        #expect(draining.drain?.lastSample?.weight == 0)
        let stats = try await Self.blueStats(lab)
        #expect(stats.servers.first?.status.hasPrefix("DRAIN") == true, "setDrain put blue-1 in drain: \(stats.servers)")
        #expect(try Self.intents(lab, action: "setDrain").count == 1)

        // Open for 3 s, longer than holdFor: still draining, with the session counted.
        try await Task.sleep(for: .seconds(3))
        let still = try #require(try lab.state())
        #expect(still.phase == .draining, "\(still.drain?.reason ?? "")")
        #expect(still.drain?.lastSample?.activeSessions == 1)
        #expect(still.drain?.reason.contains("1 sessions open") == true, "\(still.drain?.reason ?? "")")

        // status --output json shows the open session, the hold, the ETA and the DNS TTL wait.
        let status = try await lab.statusJSON()
        #expect(status["phase"] as? String == "draining")
        let drain = try #require(status["drain"] as? [String: Any], "\(status)")
        #expect(drain["activeSessions"] as? Int == 1)
        let hold = try #require(drain["hold"] as? [String: Any])
        #expect(hold["holdForSeconds"] as? Double == 2)
        #expect(hold["heldSeconds"] as? Double == 0)
        #expect(drain["eta"] as? String == "unknown", "one steady session gives no decay to fit: \(drain)")
        #expect((drain["etaReason"] as? String)?.isEmpty == false)
        #expect((drain["dnsTTL"] as? [String: Any])?["seconds"] as? Double == 0)
        let text = try await lab.cli(["status"])
        #expect(text.stdout.contains("drain of blue: draining; 1 session open · hold 0s of 2s · ETA unknown"), "\(text.stdout)")

        // The download ends: blue is drained holdFor later (the idle keep-alive is still open).
        held.close()
        let closedAt = Instant(millisecondsSinceEpoch: Int64(Date().timeIntervalSince1970 * 1000))
        let exit = try await lab.waitForExit(coordinator, timeout: 20)
        #expect(exit == 0, "\(coordinator.logTail(lines: 20))")
        let drained = try #require(try lab.engineEvents(.drained).last)
        #expect(drained.at - closedAt >= .milliseconds(1_700), "drained \(drained.at - closedAt) after the close, hold 2s")
        #expect(drained.at - closedAt < .seconds(5))
        #expect(try lab.state()?.phase == .drained)
        #expect(try lab.engineEvents(.drainProgress).isEmpty == false, "drain progress is journaled")
        let log = coordinator.logTail(lines: 5)
        #expect(log.contains("drained"), "\(log)")
    }

    @Test("a trickle of requests pinned to blue restarts the hold each time; when it stops, blue drains holdFor later")
    func trickleRestartsHold() async throws {
        // A request every 2.5 s against a 4 s hold: the hold never completes while they come. The
        // gap leaves room to read each request back from the journal, where the state lands at
        // most once a second after the sample that saw it (it once lagged past a 1.2 s gap on a
        // loaded machine).
        let lab = try await CutoverLab("drain-trickle", policy: .init(holdFor: "4s", backendLines: Self.pin))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 45)
        let coordinator = try lab.startCoordinator(until: "drained")
        defer { coordinator.stopInBackground() }
        try await lab.waitFor("draining", process: coordinator) { $0.phase == .draining && $0.drain?.lastSample != nil }
        var lastRequest = Date()
        var activity: [Instant] = []
        for _ in 0..<5 {
            let sent = Date()
            let answer = try await Command.run("/usr/bin/curl", ["-s", "-H", "X-Pin: blue", lab.haproxy.url])
            #expect(answer.output.contains("blue-1"), "pinned to blue while it drains: \(answer.output)")
            lastRequest = Date()
            // The sample that saw this request, as journaled.
            let since = sent.timeIntervalSince1970 - 0.05
            var seen: CutoverState?
            _ = try await Wait.until(timeout: 2.3, every: .milliseconds(50)) {
                guard let state = try lab.state(), let at = state.drain?.lastActivityAt, at.seconds >= since else { return false }
                seen = state
                return true
            }
            let state = try #require(seen, "request at \(sent) not seen as activity on blue in the journal within 2.3 s")
            #expect(state.phase == .draining, "a request every 2.5 s never lets a 4 s hold finish")
            let drain = try #require(state.drain)
            if let at = drain.lastActivityAt { activity.append(at) }
            if let idleSince = drain.idleSince {
                #expect(idleSince.seconds >= since, "the hold restarted at this request, not before: idle since \(idleSince)")
            }
            let left = 2.5 - Date().timeIntervalSince(sent)
            if left > 0 { try await Task.sleep(for: .milliseconds(Int(left * 1000))) }
        }
        #expect(Set(activity).count == 5, "each request was seen as new activity on blue: \(activity)")
        let exit = try await lab.waitForExit(coordinator, timeout: 20)
        #expect(exit == 0, "\(coordinator.logTail(lines: 20))")
        let drained = try #require(try lab.engineEvents(.drained).last)
        let since = drained.at.seconds - lastRequest.timeIntervalSince1970
        #expect(since >= 3.7 && since < 7, "drained \(since)s after the last pinned request (hold 4s)")
        #expect(try await Self.blueStats(lab).totalRequests >= 5)
    }

    @Test("decommission before drained refuses with the evidence and changes nothing; --force --reason records both; rollback then refuses")
    func decommissionGuard() async throws {
        let lab = try await CutoverLab("drain-guard", policy: .init(holdFor: "30s"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 45)
        let coordinator = try lab.startCoordinator(until: nil)
        defer { coordinator.stopInBackground() }
        try await lab.waitFor("draining", process: coordinator) { $0.phase == .draining && $0.drain?.lastSample != nil }
        let before = try lab.events().count

        let refused = try await lab.cli(["decommission", "blue"])
        #expect(refused.exitCode == 1, "\(refused.stdout) \(refused.stderr)")
        #expect(refused.stdout.contains("decommission: refused: blue is not drained"), "\(refused.stdout)")
        #expect(refused.stdout.contains("evidence: open sessions 0; last request seen: none since the drain began"), "\(refused.stdout)")
        #expect(refused.stdout.contains("live weight 0"), "\(refused.stdout)")
        let after = try #require(try lab.state())
        #expect(after.phase == .draining && after.decommissionedAt == nil, "a refused decommission changes nothing")
        #expect(try lab.engineEvents(.decommissioned).isEmpty)
        #expect(try lab.events().dropFirst(before).allSatisfy { $0.kind != "intent" }, "no action on the load balancer")

        let noReason = try await lab.cli(["decommission", "blue", "--force"])
        #expect(noReason.exitCode != 0 && noReason.exitCode != 1, "a usage error, not a refusal: \(noReason.exitCode)")
        #expect(noReason.stderr.contains("--force needs --reason"), "\(noReason.stderr)")
        #expect(try lab.state()?.phase == .draining)

        let forced = try await lab.cli(["decommission", "blue", "--force", "--reason", "blue's nodes are being reclaimed"])
        #expect(forced.exitCode == 0, "\(forced.stdout) \(forced.stderr)")
        let event = try #require(try lab.engineEvents(.decommissioned).last?.event)
        #expect(event.evidence["forced"] == "true")
        #expect(event.evidence["reason"] == "blue's nodes are being reclaimed")
        #expect(event.evidence["activeSessions"] == "0")
        #expect(event.evidence["liveWeight"] == "0")
        #expect(event.evidence["drainStatus"] == "draining")
        #expect(event.evidence["lastRequestSeenAt"] != nil)
        #expect(try await lab.waitForExit(coordinator, timeout: 10) == 0, "a decommissioned run is over")
        let status = try await lab.statusJSON()
        #expect(status["phase"] as? String == "decommissioned")

        let rollback = try await lab.cli(["rollback", "--reason", "changed my mind"])
        #expect(rollback.exitCode == 1)
        #expect(rollback.stdout.contains("blue was decommissioned"), "\(rollback.stdout)")
        let (blue, green) = try await lab.liveWeights()
        #expect(blue == 0 && green > 0, "no traffic to blue after decommission")
    }

    @Test("rollback during the drain (coordinator running) puts blue back in service with all traffic, verified")
    func rollbackWhileDraining() async throws {
        let lab = try await CutoverLab("drain-rollback", policy: .init(holdFor: "30s"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 45)
        let coordinator = try lab.startCoordinator(until: nil)
        defer { coordinator.stopInBackground() }
        try await lab.waitFor("draining", process: coordinator) { $0.phase == .draining && $0.drain?.lastSample != nil }
        #expect(try await Self.blueStats(lab).servers.first?.status.hasPrefix("DRAIN") == true)
        let rollback = try await lab.cli(["rollback", "--reason", "green's latency"])
        #expect(rollback.exitCode == 0, "\(rollback.stdout) \(rollback.stderr)")
        #expect(try await lab.waitForExit(coordinator, timeout: 10) == 1, "a rolled-back run exits 1")
        let (blue, green) = try await lab.liveWeights()
        #expect(blue > 0 && green == 0)
        let stats = try await Self.blueStats(lab)
        #expect(stats.servers.first?.status.hasPrefix("DRAIN") == false, "blue-1 is ready again: \(stats.servers)")
        let answer = try await Command.run("/usr/bin/curl", ["-s", lab.haproxy.url])
        #expect(answer.output.contains("blue-1"))
        #expect(try lab.state()?.rollbackVerified == true)
    }

    @Test("after drained, with no coordinator: decommission takes a fresh sample and is accepted; rollback then refuses")
    func decommissionAfterDrained() async throws {
        let lab = try await CutoverLab("drain-decommission")
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 45)
        let run = try await lab.cli(["run", "blue", "green", "--policy", "test"])
        #expect(run.exitCode == 0, "\(run.stdout) \(run.stderr)")
        #expect(run.stdout.contains("drained: all traffic on green; blue drained"), "\(run.stdout)")
        #expect(try lab.state()?.phase == .drained)
        // `switchover drain blue` after it goes on with that run: one fresh sample, still drained.
        let drain = try await lab.cli(["drain", "blue"])
        #expect(drain.exitCode == 0, "\(drain.stdout) \(drain.stderr)")
        #expect(drain.stdout.contains("drained: blue"), "\(drain.stdout)")
        #expect(try lab.journal().latestRun()?.id == 1, "no new run")

        let samplesBefore = try lab.journal().samples(run: 1, cluster: "blue", since: .seconds(0)).count
        let decommission = try await lab.cli(["decommission", "blue"])
        #expect(decommission.exitCode == 0, "\(decommission.stdout) \(decommission.stderr)")
        #expect(decommission.stdout.contains("accepted: blue drained; it may be torn down"), "\(decommission.stdout)")
        #expect(try lab.journal().samples(run: 1, cluster: "blue", since: .seconds(0)).count == samplesBefore + 1,
                "judged on a sample taken now")
        let event = try #require(try lab.engineEvents(.decommissioned).last?.event)
        #expect(event.evidence["forced"] == "false")
        let text = try await lab.cli(["status"])
        #expect(text.stdout.contains("phase decommissioned"), "\(text.stdout)")

        let again = try await lab.cli(["decommission", "blue"])
        #expect(again.exitCode == 1 && again.stdout.contains("already decommissioned"), "\(again.stdout)")
        let rollback = try await lab.cli(["rollback"])
        #expect(rollback.exitCode == 1 && rollback.stdout.contains("decommissioned"), "\(rollback.stdout)")
        let (blue, _) = try await lab.liveWeights()
        #expect(blue == 0)
    }

    @Test("after drained, with no coordinator: rollback readies blue and puts all traffic back, verified")
    func rollbackAfterDrained() async throws {
        let lab = try await CutoverLab("drain-offline-rollback")
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 45)
        let run = try await lab.cli(["run", "blue", "green", "--policy", "test", "--until", "drained"])
        #expect(run.exitCode == 0, "\(run.stdout) \(run.stderr)")
        #expect(try await Self.blueStats(lab).servers.first?.status.hasPrefix("DRAIN") == true)
        let rollback = try await lab.cli(["rollback", "--reason", "green misbehaves"])
        #expect(rollback.exitCode == 0, "\(rollback.stdout) \(rollback.stderr)")
        let (blue, green) = try await lab.liveWeights()
        #expect(blue > 0 && green == 0)
        #expect(try await Self.blueStats(lab).servers.first?.status.hasPrefix("DRAIN") == false)
        #expect(try Self.intents(lab, action: "setReady").count == 1)
        #expect(try lab.state()?.phase == .rolledBack)
    }

    @Test("`--until promoted` still stops at promoted and leaves blue's servers alone")
    func untilPromoted() async throws {
        let lab = try await CutoverLab("drain-until-promoted")
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 45)
        let run = try await lab.cli(["run", "blue", "green", "--policy", "test", "--until", "promoted"])
        #expect(run.exitCode == 0, "\(run.stdout) \(run.stderr)")
        #expect(try lab.state()?.phase == .promoted)
        #expect(try await Self.blueStats(lab).servers.first?.status.hasPrefix("DRAIN") == false)
        let bad = try await lab.cli(["run", "blue", "green", "--policy", "test", "--until", "gone"])
        #expect(bad.exitCode != 0 && bad.stderr.contains("not a goal"), "\(bad.stderr)")
    }

    @Test("`switchover drain blue` for a cutover made elsewhere: refuses while blue's weight is not 0, then drains")
    func drainOnly() async throws {
        let lab = try await CutoverLab("drain-only")
        defer { lab.stopAll() }
        let refused = try await lab.cli(["drain", "blue", "--policy", "test"])
        #expect(refused.exitCode == 1)
        #expect(refused.stderr.contains("blue's live weight is 1 (blue-1=1), not 0"), "\(refused.stderr)")
        #expect(try lab.state() == nil, "a refused drain journals no run")

        // Someone moved all traffic to green by hand.
        try await lab.driver().apply(WeightAssignment(from: [.init(server: "blue-1", weight: 0)],
                                                      to: [.init(server: "green-1", weight: 1)]))
        let drained = try await lab.cli(["drain", "blue", "--policy", "test", "--output", "json"])
        #expect(drained.exitCode == 0, "\(drained.stdout) \(drained.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(drained.stdout.utf8)) as? [String: Any])
        #expect(object["outcome"] as? String == "drained")
        #expect(try lab.events().contains { $0.kind == "drainOnly" })
        #expect(try lab.state()?.phase == .drained)
        #expect(try await Self.blueStats(lab).servers.first?.status.hasPrefix("DRAIN") == true)
        let run = try #require(try lab.journal().latestRun())
        #expect(run.from == "blue" && run.to == "green" && run.policy == "test")
    }

    @Test("the drain times out with what is still open (exit 1); forceAfter shuts the sessions down, journaled, and then it drains")
    func timeoutAndForceClose() async throws {
        do {
            let lab = try await CutoverLab("drain-timeout", policy: .init(holdFor: "1s", drainTimeout: "3s"))
            defer { lab.stopAll() }
            let held = try Self.download(lab)
            defer { held.close() }
            try lab.startLoad(seconds: 45)
            let run = try await lab.cli(["run", "blue", "green", "--policy", "test"])
            #expect(run.exitCode == 1, "\(run.stdout) \(run.stderr)")
            #expect(run.stdout.contains("drain timed out: not drained after 3s"), "\(run.stdout)")
            #expect(run.stdout.contains("1 sessions open"), "\(run.stdout)")
            #expect(try lab.engineEvents(.drainTimedOut).count == 1)
        }
        do {
            let lab = try await CutoverLab("drain-force", policy: .init(holdFor: "1s", drainTimeout: "20s", forceAfter: "2s"))
            defer { lab.stopAll() }
            let held = try Self.download(lab)
            defer { held.close() }
            try lab.startLoad(seconds: 45)
            let run = try await lab.cli(["run", "blue", "green", "--policy", "test"])
            #expect(run.exitCode == 0, "\(run.stdout) \(run.stderr)")
            let force = try #require(try lab.engineEvents(.forceClose).first?.event)
            #expect(force.message.contains("shutting down 1 sessions still open to blue"))
            let shutdown = try #require(try Self.intents(lab, action: "shutdownSessions").first)
            let result = try lab.events().first { $0.kind == "result" && $0.intentID == shutdown.intentID }
            #expect(result?.ok == true, "\(String(describing: result))")
            #expect(try await Self.blueStats(lab).activeSessions == 0)
            #expect(try lab.state()?.phase == .drained)
        }
    }

    /// The acceptance figure: `hey` through HAProxy for the whole cutover, drain, decommission
    /// and blue's nginx stopped right after, and not one failed request in hey's own report.
    @Test("zero failed requests under hey load: cutover, drain, decommission, blue stopped")
    func zeroLossUnderLoad() async throws {
        let lab = try await CutoverLab("drain-zero-loss", policy: .init(holdFor: "2s"))
        defer { lab.stopAll() }
        let load = try Load.startHey(lab.haproxy.url, seconds: 25, rate: 50, workers: 4,
                                     logFile: lab.folder.appendingPathComponent("hey-zero-loss.log"))
        defer { load.stopInBackground(grace: 1) }
        try await Task.sleep(for: .seconds(1))
        let run = try await lab.cli(["run", "blue", "green", "--policy", "test"])
        #expect(run.exitCode == 0, "\(run.stdout) \(run.stderr)")
        #expect(try lab.state()?.phase == .drained)
        let decommission = try await lab.cli(["decommission", "blue"])
        #expect(decommission.exitCode == 0, "\(decommission.stdout) \(decommission.stderr)")
        await lab.blue.stop()
        #expect(await load.waitForExit(timeout: 40), "hey runs 25 s")
        let output = (try? String(contentsOf: load.logFile, encoding: .utf8)) ?? ""
        let report = try await HeyReport.finish(load)
        print("zero-loss: hey -z 25s -q 50 -c 4 → \(report.responses) responses, \(report.responses - report.ok) non-2xx, \(report.errors) errors")
        #expect(report.responses > 1_000, "\(output)")
        #expect(report.responses - report.ok == 0, "\(output)")
        #expect(report.errors == 0, "\(output)")
        #expect(!output.contains("Error distribution"), "\(output)")
    }

    /// The control for the figure above: the same measurement sees failures when blue is stopped
    /// while it still takes traffic (no drain), so its zero is not a blind spot.
    @Test("control: stopping blue while it still takes traffic makes hey report failures")
    func stoppingServingBlueFails() async throws {
        let lab = try await CutoverLab("drain-control")
        defer { lab.stopAll() }
        let load = try Load.startHey(lab.haproxy.url, seconds: 5, rate: 50, workers: 4,
                                     logFile: lab.folder.appendingPathComponent("hey-control.log"))
        defer { load.stopInBackground(grace: 1) }
        try await Task.sleep(for: .seconds(2))
        await lab.blue.stop()
        #expect(await load.waitForExit(timeout: 20))
        let output = (try? String(contentsOf: load.logFile, encoding: .utf8)) ?? ""
        let report = try await HeyReport.finish(load)
        #expect(report.responses > 100, "\(output)")
        print("control: hey -z 5s -q 50 -c 4, blue stopped at 2 s while serving → \(report.responses) responses, \(report.responses - report.ok) non-2xx, \(report.errors) errors")
        #expect(report.failed > 0, "blue gone while serving: \(output)")
    }

    @Test("hey's summary is read: status codes and the error distribution")
    func heyReportParsing() {
        let report = HeyReport(output: """
            Summary:
              Requests/sec:\t198.1178

            Response time histogram:
              0.001 [321]\t|■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■
              0.002 [169]\t|■■■■■■■■■■■■■■■■■■■■■

            Status code distribution:
              [200]\t950 responses
              [503]\t12 responses

            Error distribution:
              [7]\tGet "http://127.0.0.1:1/": EOF
              [3]\tGet "http://127.0.0.1:1/": dial tcp 127.0.0.1:1: connect: connection refused
            """)
        #expect(report.responses == 962 && report.ok == 950 && report.errors == 10 && report.failed == 22)
        #expect(report.statusCounts == [200: 950, 503: 12])
        #expect(report.requestsPerSecond == 198.1178)
    }
}
