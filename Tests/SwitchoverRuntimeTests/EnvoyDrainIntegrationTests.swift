import Foundation
import SwitchoverCore
import SwitchoverStore
import SwitchoverTestKit
import Testing

/// Blue's drain behind a real Envoy, through the built binary's whole `switchover run` (cutover,
/// promotion, drain), against real nginx backends under `hey` load.
///
/// Envoy keeps its upstream connections to a cluster pooled and open, idle, after the last
/// request (its idle timeout is an hour by default), and every real client uses keep-alive: so
/// what holds blue is a request in flight to it (`upstream_rq_active`), never a pooled
/// connection (`upstream_cx_active`), the way HAProxy's `scur` counts streams and not idle
/// client connections (`DrainIntegrationTests`).
@Suite
struct EnvoyDrainIntegrationTests {
    /// How long after the hold could first be met blue must read drained. The hold starts at the
    /// first sample after promotion (every 250 ms); the rest is room for a loaded 2-core machine.
    /// Without the fix blue never drains (Envoy's pooled connections stay for an hour), so any
    /// bound well under the drain's timeout tells the two apart.
    static let slack: Duration = .seconds(8)

    @Test("keep-alive clients through Envoy: blue drains within the hold plus a few seconds of promotion while Envoy keeps its pooled connections to it; decommission is accepted; hey sees 0 failed requests")
    func keepAliveLoadDrains() async throws {
        let lab = try await EnvoyLab("envoy-drain-keepalive", policy: .init(holdFor: "2s", drainTimeout: "30s"))
        defer { lab.stopAll() }
        // 4 keep-alive workers for the whole run, as in the issue; stopped (SIGINT) once blue is gone.
        let load = try Load.startHey(lab.frontURL, seconds: 120, rate: 50, workers: 4,
                                     logFile: lab.folder.appendingPathComponent("hey-keepalive.log"))
        defer { load.stopInBackground(grace: 1) }
        try await Task.sleep(for: .seconds(1))

        let run = try await lab.cli(["run", "blue", "green", "--policy", "test"])
        #expect(run.exitCode == 0, "\(run.stdout) \(run.stderr)")
        #expect(run.stdout.contains("drained: all traffic on green; blue drained"), "\(run.stdout)")
        #expect(try lab.state()?.phase == .drained)
        // What the issue saw: Envoy still holds idle connections to blue, and blue is drained anyway.
        let blueStats = try await lab.envoy.clusterStats("blue")
        #expect(blueStats["upstream_cx_active", default: 0] > 0, "Envoy's pooled connections to blue are open: \(blueStats)")
        #expect(blueStats["upstream_rq_active"] == 0, "\(blueStats)")
        #expect(blueStats["upstream_rq_total", default: 0] > 100, "blue served the load before the cutover: \(blueStats)")

        let promoted = try #require(try lab.engineEvents(.phaseChanged).first { $0.event.phase == .promoted })
        let drained = try #require(try lab.engineEvents(.drained).last)
        let holdFor: Duration = .seconds(2)
        print("envoy keep-alive: drained \(drained.at - promoted.at) after promoted (hold \(holdFor)); blue upstream_cx_active \(blueStats["upstream_cx_active", default: 0])")
        #expect(drained.at - promoted.at >= holdFor, "the hold was waited out")
        #expect(drained.at - promoted.at <= holdFor + Self.slack, "drained \(drained.at - promoted.at) after promoted")

        let decommission = try await lab.cli(["decommission", "blue"])
        #expect(decommission.exitCode == 0, "\(decommission.stdout) \(decommission.stderr)")
        #expect(decommission.stdout.contains("accepted: blue drained; it may be torn down"), "\(decommission.stdout)")
        #expect(try lab.state()?.phase == .decommissioned)
        // Torn down: blue's nginx goes, and with it Envoy's idle connections to it. No request may fail.
        await lab.blue.stop()
        try await Task.sleep(for: .seconds(2))
        let output = (try? String(contentsOf: load.logFile, encoding: .utf8)) ?? ""
        let report = try await HeyReport.finish(load)
        print("envoy keep-alive: hey -q 50 -c 4 → \(report.responses) responses, \(report.failed) failed")
        #expect(report.responses > 1_000, "\(output)")
        #expect(report.failed == 0, "\(report.statusCounts), \(report.errors) errors: \(output)")
        let (blue, green) = try await lab.liveWeights()
        #expect(blue == 0 && green > 0)
    }

    @Test("a slow download on blue across the promotion holds blue until it ends; then it drains holdFor later")
    func slowDownloadHoldsDrain() async throws {
        let lab = try await EnvoyLab("envoy-drain-download", policy: .init(holdFor: "2s", drainTimeout: "1m"))
        defer { lab.stopAll() }
        // All traffic is on blue before the run: the download (1 MB at 1 KB/s) is in flight there.
        let held = try HeldConnection(port: lab.envoy.port, send: "GET /slow HTTP/1.1\r\nHost: lab\r\n\r\n")
        defer { held.close() }
        try await Wait.until(timeout: 5, every: .milliseconds(50)) {
            try await lab.envoy.clusterStats("blue")["upstream_rq_active"] == 1
        }
        #expect(try await lab.envoy.clusterStats("blue")["upstream_rq_active"] == 1, "the download is in flight on blue")
        try lab.startLoad(seconds: 60)  // green's gate needs traffic

        let coordinator = try lab.startCoordinator(until: nil)  // the policy has a drain section: goal drained
        defer { coordinator.stopInBackground() }
        try await lab.waitFor("draining", process: coordinator) { $0.phase == .draining && $0.drain?.lastSample != nil }
        #expect(try lab.events().contains { $0.kind == "drainStateUnsupported" },
                "the journal says blue was not put in drain (Envoy has no drain state, weight 0 stands in)")
        #expect(try !lab.events().contains { $0.kind == "intent" && $0.detail.contains("\"action\":\"setDrain\"") },
                "nothing was asked of Envoy, so no intent")

        // Open for 3 s, longer than holdFor: still draining, the download counted.
        try await Task.sleep(for: .seconds(3))
        let still = try #require(try lab.state())
        #expect(still.phase == .draining, "\(still.drain?.reason ?? "")")
        #expect(still.drain?.lastSample?.weight == 0)
        #expect(still.drain?.lastSample?.activeSessions == 1)
        #expect(still.drain?.reason.contains("1 sessions open") == true, "\(still.drain?.reason ?? "")")
        let status = try await lab.statusJSON()
        #expect((status["drain"] as? [String: Any])?["activeSessions"] as? Int == 1, "\(status)")
        #expect(coordinator.isRunning)

        // The download ends: blue is drained holdFor later (Envoy's pooled connections stay open).
        held.close()
        let closedAt = Instant(millisecondsSinceEpoch: Int64(Date().timeIntervalSince1970 * 1000))
        let exit = try await lab.waitForExit(coordinator, timeout: 30)
        #expect(exit == 0, "\(coordinator.logTail(lines: 20))")
        let drained = try #require(try lab.engineEvents(.drained).last)
        print("envoy download: drained \(drained.at - closedAt) after the download ended (hold 2s)")
        #expect(drained.at - closedAt >= .milliseconds(1_700), "drained \(drained.at - closedAt) after the close, hold 2s")
        #expect(drained.at - closedAt <= .seconds(2) + Self.slack)
        #expect(try lab.state()?.phase == .drained)
    }
}
