import Foundation
import SwitchoverCore
import SwitchoverStore
import SwitchoverTestKit
import Testing

/// `switchover run` with the HAProxy driver moving the weights and `traffic.prometheus` counting:
/// the gates and the hard signal read green's 5xx through PromQL over the HAProxy exporter's
/// per-server counters, as Prometheus scraped them, not through HAProxy's runtime API.
@Suite
struct PrometheusTrafficIntegrationTests {
    static func traffic(port: Int) -> [String] {
        [
            "traffic:",
            "  prometheus:",
            "    url: http://127.0.0.1:\(port)",
            #"    requests: 'sum(haproxy_server_http_responses_total{proxy="app",server=~"$cluster-.*"})'"#,
            #"    errors: 'sum(haproxy_server_http_responses_total{proxy="app",server=~"$cluster-.*",code="5xx"})'"#,
            #"    activeSessions: 'sum(haproxy_server_current_sessions{proxy="app",server=~"$cluster-.*"})'"#,
        ]
    }

    @Test("green failing, counted by Prometheus, rolls back to 100% blue")
    func failingGreenCountedByPrometheusRollsBack() async throws {
        var options = Lab.PolicyOptions(steps: [25, 100], bake: "30s", hardSignal: (0.2, 10))
        let lab = try await CutoverLab("promtraffic", policy: options)
        defer { lab.stopAll() }
        options.extraSpec = Self.traffic(port: lab.prometheusPort)
        try await lab.writeConfiguration(options)
        try await lab.startPrometheus()

        let plan = try await runSwitchover(["plan", "blue", "green", "--policy", "test"] + lab.globalArguments, cwd: nil)
        #expect(plan.exitCode == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains("traffic counted by Prometheus at http://127.0.0.1:\(lab.prometheusPort)"), "\(plan.stdout)")

        try lab.startLoad(seconds: 40, rate: 50, workers: 6)
        let coordinator = try lab.startCoordinator()
        defer { coordinator.stopInBackground() }
        try await lab.waitFor("step 1 baking", process: coordinator) { $0.step == 1 && $0.stepStartedAt != nil }
        // Green takes its 25% and passes while it answers 200.
        try await Task.sleep(for: .seconds(3))
        #expect(try lab.state()?.phase == .shifting)
        try lab.green.fail(true)

        let exit = try await lab.waitForExit(coordinator, timeout: 60)
        #expect(exit == 1, "\(coordinator.logTail(lines: 40))")
        let (blue, green) = try await lab.liveWeights()
        #expect(blue > 0 && green == 0)
        let state = try #require(try lab.state())
        #expect(state.phase == .rolledBack && state.rollbackVerified)
        // The samples the engine judged are Prometheus's (its one instance), not HAProxy's.
        #expect(state.lastSample?.instances?.keys.sorted() == ["prometheus"], "\(String(describing: state.lastSample))")
        #expect((state.lastSample?.clusters["green"]?.responses5xx ?? 0) > 0)
        let kinds = Set(try lab.events().map(\.kind))
        #expect(kinds.contains("hardSignal") || kinds.contains("rollbackStarted"), "\(kinds)")
    }
}
