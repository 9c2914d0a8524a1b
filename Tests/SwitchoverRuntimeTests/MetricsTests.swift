import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverRuntime
import Synchronization
import SwitchoverTestKit
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The coordinator's `/metrics` without a load balancer: the exposition `MetricsReporter` renders
/// from the snapshots and events a coordinator would feed it, and `MetricsServer` answering on a
/// real socket (the series over a whole real run are `MetricsIntegrationTests`').
@Suite
struct MetricsTests {
    /// A policy as the loader reads it: HAProxy's single form (backend `app`), one gate, a drain section.
    static func policy() throws -> Policy {
        let folder = try TemporaryDirectory.make("metrics-policy")
        defer { try? FileManager.default.removeItem(at: folder) }
        let document = PolicyDocument(name: "gradual", loadBalancer: PolicyDocument.haproxy(socket: "/run/haproxy.sock"),
                                      steps: [10, 50, 100], bake: "30s",
                                      gates: ["name: green-errors\nloadBalancer: {cluster: green, max5xxRatio: 0.05, minRequests: 5}"],
                                      drain: PolicyDocument.drain(holdFor: "10s", timeout: "1m"))
        try ConfigDocuments.write(clusters: [], policies: [document], in: folder)
        let file = folder.appendingPathComponent("policies/gradual.yaml").path
        return try #require(ConfigLoader.loadFile(file, drivers: DriverRegistry.standard.descriptions).policy)
    }

    /// One sample line of the exposition: name, labels, value.
    struct Line: Equatable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    /// The sample lines of a text exposition (comments left out); labels hold no `,` or `"` here.
    static func parse(_ text: String) -> [Line] {
        text.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line -> Line? in
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { return nil }
            let series = line[..<space]
            guard let brace = series.firstIndex(of: "{") else { return Line(name: String(series), labels: [:], value: value) }
            var labels: [String: String] = [:]
            for pair in series[series.index(after: brace)..<series.index(before: series.endIndex)].split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                labels[String(parts[0])] = String(parts[1].dropFirst().dropLast())
            }
            return Line(name: String(series[..<brace]), labels: labels, value: value)
        }
    }

    @Test("the exposition has every series of the contract with its HELP; the current phase is 1 and every other phase 0")
    func expositionHasTheContractSeries() throws {
        let policy = try Self.policy()
        let t0 = Instant(millisecondsSinceEpoch: 1_800_000_000_000)
        let now = Mutex(t0)
        let metrics = MetricsReporter(clock: { now.withLock { $0 } })
        metrics.setLeader(true)
        metrics.begin(run: 7, from: "blue", to: "green", policy: policy)

        var state = CutoverState.initial
        state.phase = .shifting
        state.step = 2
        state.lastSample = LoadBalancerSample(at: t0, clusters: ["blue": ClusterCounters(activeSessions: 4, weight: 3),
                                                                 "green": ClusterCounters(weight: 1)])
        metrics.progress(ProgressSnapshot(state: state, policy: policy, to: "green", now: t0))
        let failed = GateOutcome(.fail, value: 0.3, detail: "5xx ratio 0.3")
        metrics.event(EngineEvent(.gateEvaluated, "green-errors failed", step: 2, gate: "green-errors", outcome: failed), at: t0)
        metrics.event(EngineEvent(.gateEvaluated, "green-errors passed", step: 2, gate: "green-errors",
                                  outcome: GateOutcome(.pass, detail: "ok")), at: t0)
        metrics.event(EngineEvent(.gateEvaluated, "green-errors passed", step: 2, gate: "green-errors",
                                  outcome: GateOutcome(.pass, detail: "ok")), at: t0)
        metrics.event(EngineEvent(.rollbackStarted, "rolling back", step: 2, gate: "green-errors"), at: t0)
        now.withLock { $0 = t0 + .milliseconds(2500) }

        let text = String(decoding: metrics.render(), as: UTF8.self)
        let lines = Self.parse(text)
        func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            lines.first { line in line.name == name && labels.allSatisfy { key, value in line.labels[key] == value } }?.value
        }

        for name in ["switchover_info", "switchover_phase", "switchover_step", "switchover_weight_percent",
                     "switchover_gate_evaluations_total", "switchover_rollbacks_total", "switchover_last_sample_age_seconds",
                     "switchover_leader"] {
            #expect(text.contains("# HELP \(name) "), "no HELP for \(name):\n\(text)")
            #expect(text.contains("# TYPE \(name) "), "no TYPE for \(name):\n\(text)")
        }
        #expect(value("switchover_info", ["version": SwitchoverVersion.current]) == 1)

        let phases = lines.filter { $0.name == "switchover_phase" }
        #expect(Set(phases.map { $0.labels["phase"] ?? "" }) == Set(Phase.allCases.map(\.rawValue)), "\(phases)")
        let runLabels: [String: String] = ["run": "7", "from": "blue", "to": "green", "policy": "gradual"]
        #expect(phases.allSatisfy { phase in runLabels.allSatisfy { phase.labels[$0.key] == $0.value } }, "\(phases)")
        #expect(phases.filter { $0.value == 1 }.map { $0.labels["phase"] } == ["shifting"], "\(phases)")
        #expect(phases.filter { $0.value == 0 }.count == Phase.allCases.count - 1)

        #expect(value("switchover_step") == 2)
        // The single form's one service is named by its backend, as the fleet router names it.
        #expect(value("switchover_weight_percent", ["cluster": "green", "service": "app"]) == 25)
        #expect(value("switchover_weight_percent", ["cluster": "blue", "service": "app"]) == 75)
        #expect(value("switchover_gate_evaluations_total", ["gate": "green-errors", "verdict": "pass"]) == 2)
        #expect(value("switchover_gate_evaluations_total", ["gate": "green-errors", "verdict": "fail"]) == 1)
        #expect(value("switchover_gate_evaluations_total", ["gate": "green-errors", "verdict": "error"]) == 0)
        #expect(value("switchover_rollbacks_total") == 1)
        // Computed when scraped: 2.5 s after the sample was taken.
        #expect(value("switchover_last_sample_age_seconds") == 2.5)
        #expect(value("switchover_leader") == 1)
        // No drain under way: no drain series yet.
        #expect(value("switchover_drain_active_sessions") == nil)

        // Promoted, then draining with FROM's sessions: the one-hot moves, the drain series appears.
        state.phase = .draining
        state.step = 3
        var drain = DrainDetector(spec: policy.drain).start(at: t0)
        drain.lastSample = DrainSample(at: t0, weight: 0, activeSessions: 4, sessionsTotal: 10, responses: 10)
        state.drain = drain
        metrics.progress(ProgressSnapshot(state: state, policy: policy, to: "green", now: t0))
        metrics.setLeader(false)
        let after = Self.parse(String(decoding: metrics.render(), as: UTF8.self))
        #expect(after.filter { $0.name == "switchover_phase" && $0.value == 1 }.map { $0.labels["phase"] } == ["draining"])
        let sessions = after.first { $0.name == "switchover_drain_active_sessions" }
        #expect(sessions?.labels == ["cluster": "blue"])
        #expect(sessions?.value == 4)
        #expect(after.first { $0.name == "switchover_leader" }?.value == 0)
    }

    @Test("several services: one weight series per service and cluster, from the sample's per-service weights")
    func weightsPerService() throws {
        let policy = try Self.policy()
        let metrics = MetricsReporter()
        metrics.begin(run: 1, from: "blue", to: "green", policy: policy)
        var state = CutoverState.initial
        state.phase = .shifting
        let at = Coordinator.wallClock()
        state.lastSample = LoadBalancerSample(at: at, clusters: ["blue": ClusterCounters(weight: 2), "green": ClusterCounters(weight: 2)],
                                              services: ["cart": ["blue": ClusterCounters(weight: 0), "green": ClusterCounters(weight: 1)],
                                                         "checkout": ["blue": ClusterCounters(weight: 1), "green": ClusterCounters(weight: 0)]])
        metrics.progress(ProgressSnapshot(state: state, policy: policy, to: "green", now: at))
        let weights = Self.parse(String(decoding: metrics.render(), as: UTF8.self)).filter { $0.name == "switchover_weight_percent" }
        let byKey = Dictionary(uniqueKeysWithValues: weights.map { ("\($0.labels["service"]!)/\($0.labels["cluster"]!)", $0.value) })
        #expect(byKey == ["cart/green": 100, "cart/blue": 0, "checkout/green": 0, "checkout/blue": 100], "\(weights)")
    }

    @Test("a rollback's read-back sets the weights at once: the run may end on it before another sample")
    func rollbackReadBackIsTheLastWord() throws {
        let policy = try Self.policy()
        let metrics = MetricsReporter()
        metrics.begin(run: 3, from: "blue", to: "green", policy: policy)
        var state = CutoverState.initial
        state.phase = .shifting
        let at = Coordinator.wallClock()
        state.lastSample = LoadBalancerSample(at: at, clusters: ["blue": ClusterCounters(weight: 1), "green": ClusterCounters(weight: 1)])
        metrics.progress(ProgressSnapshot(state: state, policy: policy, to: "green", now: at))
        func green() -> Double? {
            Self.parse(String(decoding: metrics.render(), as: UTF8.self))
                .first { $0.name == "switchover_weight_percent" && $0.labels["cluster"] == "green" }?.value
        }
        #expect(green() == 50)
        metrics.event(EngineEvent(.rollbackVerified, "all traffic back on blue", phase: .rolledBack,
                                  evidence: ["percentToTarget": "0.0"]), at: at)
        #expect(green() == 0)
        // The snapshots that follow still carry the sample from before the rollback.
        state.phase = .rolledBack
        metrics.progress(ProgressSnapshot(state: state, policy: policy, to: "green", now: at))
        #expect(green() == 0)
        let blue = Self.parse(String(decoding: metrics.render(), as: UTF8.self))
            .first { $0.name == "switchover_weight_percent" && $0.labels["cluster"] == "blue" }?.value
        #expect(blue == 100)
    }

    @Test("--metrics-address takes HOST:PORT with IPv6 in brackets, and names what is wrong with anything else")
    func addressParsing() throws {
        let v4 = try MetricsAddress(parsing: "127.0.0.1:9464")
        #expect(v4.host == "127.0.0.1" && v4.port == 9464)
        let v6 = try MetricsAddress(parsing: "[::1]:9464")
        #expect(v6.host == "::1" && v6.port == 9464 && v6.description == "[::1]:9464")
        for bad in ["127.0.0.1", "127.0.0.1:", ":9464", "127.0.0.1:99999", "127.0.0.1:0", "localhost:http", "::1:9464"] {
            #expect(throws: RuntimeError.self, "\(bad)") { try MetricsAddress(parsing: bad) }
        }
    }

    @Test("/metrics answers the exposition on the address given, any other path 404; an address in use is refused by name")
    func serverAnswersAndRefusesABusyAddress() async throws {
        let port = try Loopback.freePort()
        let metrics = MetricsReporter()
        metrics.setLeader(true)
        let logger = Logger(label: "test.metrics")
        let server = try await MetricsServer.bind(MetricsAddress(parsing: "127.0.0.1:\(port)"), metrics: metrics, logger: logger)
        defer { server.close() }

        let scraped = try await Command.run("/usr/bin/curl", ["-s", "-i", "http://127.0.0.1:\(port)/metrics"])
        #expect(scraped.output.hasPrefix("HTTP/1.1 200"), "\(scraped.output)")
        #expect(scraped.output.contains("Content-Type: text/plain; version=0.0.4"), "\(scraped.output)")
        #expect(scraped.output.contains("switchover_leader 1"), "\(scraped.output)")
        let other = try await Command.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/"])
        #expect(other.output == "404")

        // A second listener on the same address: refused, naming it and why.
        let error = await #expect(throws: RuntimeError.self) {
            try await MetricsServer.bind(MetricsAddress(parsing: "127.0.0.1:\(port)"), metrics: MetricsReporter(), logger: logger)
        }
        #expect(error?.code == .metricsBind)
        #expect(error?.description.contains("127.0.0.1:\(port)") == true && error?.description.contains("already in use") == true,
                "\(String(describing: error))")
    }
}
