import Foundation
import SwitchoverCore
import SwitchoverTestKit
import Testing

/// `switchover run --metrics-address` as the built binary against the lab's real HAProxy and
/// nginx, its `/metrics` scraped by a real Prometheus every second, and read back through
/// Prometheus's HTTP API, as a dashboard would.
@Suite
struct MetricsIntegrationTests {
    /// `run blue green --policy test --until promoted` with `extra` arguments, as its own process.
    static func startRun(_ lab: CutoverLab, _ extra: [String]) throws -> ManagedProcess {
        try ManagedProcess(name: "switchover run", executable: try switchoverExecutable().path,
                           arguments: ["run", "blue", "green", "--policy", "test", "--until", "promoted"] + extra + lab.globalArguments,
                           logFile: lab.folder.appendingPathComponent("run-\(UUID().uuidString.prefix(6)).log"))
    }

    /// `path` of Prometheus's HTTP API (`/api/v1/...`) as JSON's `data.result`.
    static func query(_ prometheus: PrometheusServer, _ path: String, _ parameters: [String: String]) async throws -> [[String: Any]] {
        var components = URLComponents(url: prometheus.url.appendingPathComponent(path), resolvingAgainstBaseURL: false)!
        components.queryItems = parameters.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        let answer = try await Command.run("/usr/bin/curl", ["-s", components.url!.absoluteString])
        guard let object = try? JSONSerialization.jsonObject(with: Data(answer.output.utf8)) as? [String: Any],
              let data = object["data"] as? [String: Any], let result = data["result"] as? [[String: Any]] else {
            throw TestKitError("Prometheus answered \(answer.output.prefix(500))")
        }
        return result
    }

    /// The one value of an instant query, nil when it has none.
    static func instant(_ prometheus: PrometheusServer, _ query: String) async throws -> Double? {
        let result = try await Self.query(prometheus, "api/v1/query", ["query": query])
        guard let value = result.first?["value"] as? [Any], let text = value.last as? String else { return nil }
        return Double(text)
    }

    /// Prometheus scrapes once it is ready, some seconds after it listens (answering 503 until then):
    /// until it has tried the target once (`up` 0, nothing listens yet), a run of a few seconds
    /// could pass unseen.
    static func waitForFirstScrape(_ prometheus: PrometheusServer, port: Int) async throws {
        let scraping = await Wait.until(timeout: 30, every: .milliseconds(200)) {
            ((try? await Self.instant(prometheus, "up{job=\"switchover\"}")) ?? nil) != nil
        }
        try #require(scraping, "Prometheus never tried to scrape 127.0.0.1:\(port)")
    }

    @Test("a healthy run scraped by Prometheus every second: green's weight rises step by step to 100 and the last phase scraped is promoted")
    func prometheusFollowsTheSteps() async throws {
        let lab = try await CutoverLab("metrics")
        defer { lab.stopAll() }
        let port = try Loopback.freePort()
        let prometheus = try await PrometheusServer.start(target: "127.0.0.1:\(port)", interval: "1s", job: "switchover", in: lab.folder)
        defer { prometheus.stopInBackground() }
        try await Self.waitForFirstScrape(prometheus, port: port)
        try lab.startLoad(seconds: 30)
        let started = Date()
        // The linger keeps /metrics up after promotion until Prometheus has scraped it once more.
        let coordinator = try Self.startRun(lab, ["--metrics-address", "127.0.0.1:\(port)", "--metrics-linger", "10s"])
        defer { coordinator.stopInBackground() }
        #expect(try await lab.waitForExit(coordinator) == 0, "\(coordinator.logTail(lines: 30))")
        let ended = Date()

        // The last scrape lands in Prometheus's head block just after it was answered.
        var promoted: Double?
        try await Wait.until(timeout: 10, every: .milliseconds(200)) {
            promoted = try await Self.instant(prometheus, "last_over_time(switchover_phase{phase=\"promoted\"}[5m])")
            return promoted == 1
        }
        #expect(promoted == 1, "the last scrape did not see promoted:\n\(coordinator.logTail(lines: 20))")
        #expect(try await Self.instant(prometheus, "last_over_time(switchover_phase{phase=\"shifting\"}[5m])") == 0)
        #expect(try await Self.instant(prometheus, "sum(last_over_time(switchover_phase[5m]))") == 1, "one phase at 1")
        #expect(try await Self.instant(prometheus, "last_over_time(switchover_step[5m])") == 4)
        #expect(try await Self.instant(prometheus, "max_over_time(switchover_leader[5m])") == 1)
        #expect(try await Self.instant(prometheus, "sum(last_over_time(switchover_gate_evaluations_total{gate=\"green-errors\",verdict=\"pass\"}[5m]))")
            ?? 0 > 0)

        // Green's weight, scrape by scrape, as read back from HAProxy: never down, through the
        // policy's steps (10, 25, 50, 100), ending at 100.
        let range = try await Self.query(prometheus, "api/v1/query_range", [
            "query": "switchover_weight_percent{cluster=\"green\",service=\"app\"}",
            "start": String(format: "%.3f", started.timeIntervalSince1970 - 1),
            "end": String(format: "%.3f", ended.timeIntervalSince1970 + 2),
            "step": "1",
        ])
        let points = try #require(range.first?["values"] as? [[Any]], "no green weight series: \(range)")
        let values = points.compactMap { ($0.last as? String).flatMap(Double.init) }
        #expect(zip(values, values.dropFirst()).allSatisfy { $0 <= $1 }, "green's weight went down: \(values)")
        #expect(values.last == 100, "\(values)")
        // HAProxy's integer weights make a step's share close to the policy's, not equal.
        let steps: [Double] = [10, 25, 50, 100]
        let seen = Set(values.compactMap { value in steps.first { abs($0 - value) < 1 } })
        #expect(values.allSatisfy { value in value == 0 || steps.contains { abs($0 - value) < 1 } }, "\(values)")
        #expect(seen.count >= 3 && seen.contains(100), "steps seen \(seen.sorted()) in \(values)")
        // Blue is the rest.
        #expect(try await Self.instant(prometheus, "last_over_time(switchover_weight_percent{cluster=\"blue\"}[5m])") == 0)
    }

    @Test("a run that rolls back: the last scrape shows rolledBack, green at 0 as read back, and one rollback counted")
    func prometheusSeesTheRollback() async throws {
        let lab = try await CutoverLab("metrics-rollback", policy: .init(bake: "2s"))
        defer { lab.stopAll() }
        let port = try Loopback.freePort()
        let prometheus = try await PrometheusServer.start(target: "127.0.0.1:\(port)", interval: "1s", job: "switchover", in: lab.folder)
        defer { prometheus.stopInBackground() }
        try await Self.waitForFirstScrape(prometheus, port: port)
        try lab.startLoad(seconds: 30)
        let coordinator = try Self.startRun(lab, ["--metrics-address", "127.0.0.1:\(port)", "--metrics-linger", "10s"])
        defer { coordinator.stopInBackground() }
        try await lab.waitFor("step 2 verified", process: coordinator) { $0.step == 2 && $0.stepStartedAt != nil }
        // Prometheus has seen green with weight before it fails.
        let sawWeight = try await Wait.until(timeout: 10, every: .milliseconds(200)) {
            try await Self.instant(prometheus, "max_over_time(switchover_weight_percent{cluster=\"green\"}[5m])") ?? 0 > 0
        }
        try #require(sawWeight)
        try lab.green.fail(true)
        #expect(try await lab.waitForExit(coordinator) == 1, "\(coordinator.logTail(lines: 30))")

        var phase: Double?
        try await Wait.until(timeout: 10, every: .milliseconds(200)) {
            phase = try await Self.instant(prometheus, "last_over_time(switchover_phase{phase=\"rolledBack\"}[5m])")
            return phase == 1
        }
        #expect(phase == 1, "the last scrape did not see rolledBack:\n\(coordinator.logTail(lines: 20))")
        #expect(try await Self.instant(prometheus, "last_over_time(switchover_weight_percent{cluster=\"green\"}[5m])") == 0)
        #expect(try await Self.instant(prometheus, "last_over_time(switchover_weight_percent{cluster=\"blue\"}[5m])") == 100)
        #expect(try await Self.instant(prometheus, "last_over_time(switchover_rollbacks_total[5m])") == 1)
        let (blue, green) = try await lab.liveWeights()
        #expect(blue > 0 && green == 0, "HAProxy agrees")
    }

    @Test("--metrics-address on a port in use, or not HOST:PORT, exits 2 before the load balancer is touched")
    func unusableAddressRefusesBeforeAnything() async throws {
        let lab = try await CutoverLab("metrics-busy")
        defer { lab.stopAll() }
        let busy = try SilentListener()
        for (address, says) in [("127.0.0.1:\(busy.port)", "already in use"), ("127.0.0.1", "is not HOST:PORT")] {
            let run = try await lab.cli(["run", "blue", "green", "--policy", "test", "--metrics-address", address])
            #expect(run.exitCode == 2, "\(address): \(run.stdout) \(run.stderr)")
            #expect(run.stderr.contains(says) && run.stderr.contains(address), "\(run.stderr)")
        }
        // Nothing happened: no run journaled, HAProxy's weights as the lab set them.
        #expect(try lab.state() == nil)
        let (blue, green) = try await lab.liveWeights()
        #expect(blue == 1 && green == 0)
        _ = busy
    }
}
