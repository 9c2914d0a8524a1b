import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverStore
import SwitchoverTestKit
import Testing

/// A whole cutover on loopback: nginx backends blue-1 and green-1 (green fails on demand), a
/// real HAProxy in front (blue-1 weight 1, green-1 weight 0: 0% to green), optionally a real
/// Prometheus scraping HAProxy's exporter on a port that survives its restart, shared-root test
/// PKI so trust holds both ways, configuration folders, and the BUILT `switchover` binary.
final class CutoverLab: @unchecked Sendable {
    struct PolicyOptions {
        var steps: [Int] = [10, 25, 50, 100]
        var bake = "1500ms"
        var interval = "500ms"
        var failureThreshold = 2
        var pauseAfterErrors = 2
        var minRequests = 5
        var hardSignal: (ratio: Double, minRequests: Int)? = nil
        var prometheusGate = false
        var holdFor = "1s"
        var dnsTTL = "0s"
        var drainTimeout = "1m"
        var forceAfter: String? = nil
        /// Extra HAProxy backend lines (drain tests pin requests with `use-server`).
        var backendLines: [String] = []
        /// The path of blue's `health` URL (`/slowhealth` answers in about 2.5 s).
        var blueHealthPath = "/healthz"
    }

    let folder: URL
    let blue: NginxBackend
    let green: NginxBackend
    let haproxy: HAProxyServer
    let statePath: String
    let prometheusPort: Int
    var prometheus: ManagedProcess?
    var load: ManagedProcess?
    let logger = Logger(label: "test.lab")

    init(_ name: String, policy: PolicyOptions = PolicyOptions()) throws {
        folder = try TemporaryDirectory.make(name)
        blue = try NginxBackend(name: "blue-1", in: folder)
        green = try NginxBackend(name: "green-1", in: folder)
        haproxy = try HAProxyServer(servers: [.init(name: "blue-1", address: blue.address, weight: 1),
                                              .init(name: "green-1", address: green.address, weight: 0)],
                                    backendLines: policy.backendLines, in: folder)
        statePath = folder.appendingPathComponent("state/state.db").path
        prometheusPort = try Loopback.freePort()
        if policy.prometheusGate { try startPrometheus() }
        try writeConfiguration(policy)
    }

    deinit {
        stopAll()
        // Failures quote the logs they need (logTail) before this point.
        try? FileManager.default.removeItem(at: folder)
    }

    func stopAll() {
        load?.stop(grace: 1)
        prometheus?.stop()
        haproxy.stop()
        blue.stop()
        green.stop()
    }

    // MARK: - Configuration

    func writeConfiguration(_ options: PolicyOptions) throws {
        let pki = try TestPKI(directory: folder.appendingPathComponent("pki"))
        let root = try pki.makeRoot(name: "mesh-root", days: 365)
        let blueCA = try pki.makeIntermediate(name: "blue-ca", issuer: root, days: 365)
        let greenCA = try pki.makeIntermediate(name: "green-ca", issuer: root, days: 365)
        let roots = try pki.bundle([root], named: "roots.pem")
        let blueChain = try pki.bundle([blueCA], named: "blue-chain.pem")
        let greenChain = try pki.bundle([greenCA], named: "green-chain.pem")
        let clusters = folder.appendingPathComponent("clusters")
        let policies = folder.appendingPathComponent("policies")
        try FileManager.default.createDirectory(at: clusters, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: policies, withIntermediateDirectories: true)
        for (name, backend, chain, version, health) in [("blue", blue, blueChain, "1.27.4", options.blueHealthPath),
                                                        ("green", green, greenChain, "1.28.0", "/healthz")] {
            try """
                apiVersion: switchover.dev/v1alpha1
                kind: Cluster
                metadata:
                  name: \(name)
                spec:
                  istio:
                    version: "\(version)"
                  trust:
                    trustDomain: cluster.local
                    rootCerts: \(roots.path)
                    certChain: \(chain.path)
                  loadBalancer:
                    servers: [\(name)-1]
                  health: http://\(backend.address)\(health)

                """.write(to: clusters.appendingPathComponent("\(name).yaml"), atomically: true, encoding: .utf8)
        }
        var gates = """
                - name: green-errors
                  loadBalancer: {cluster: green, max5xxRatio: 0.05, minRequests: \(options.minRequests)}
            """
        if options.prometheusGate {
            gates += """

                    - name: haproxy-up
                      prometheus:
                        url: http://127.0.0.1:\(prometheusPort)
                        query: 'sum(up)'
                        min: 1
                """
        }
        let hard = options.hardSignal.map { "\n    hardSignal: {max5xxRatio: \($0.ratio), minRequests: \($0.minRequests)}" } ?? ""
        try """
            apiVersion: switchover.dev/v1alpha1
            kind: Policy
            metadata:
              name: test
            spec:
              loadBalancer:
                driver: haproxy
                haproxy:
                  socket: \(haproxy.socketPath)
                  backend: app
              steps: [\(options.steps.map(String.init).joined(separator: ", "))]
              bake: \(options.bake)
              interval: \(options.interval)
              sampling: 250ms
              failureThreshold: \(options.failureThreshold)
              pauseAfterErrors: \(options.pauseAfterErrors)
              gates:
            \(gates)
              rollback:
                automatic: true\(hard)
              drain:
                maxActiveSessions: 0
                holdFor: \(options.holdFor)
                dnsTTL: \(options.dnsTTL)
                timeout: \(options.drainTimeout)\(options.forceAfter.map { "\n    forceAfter: \($0)" } ?? "")

            """.write(to: policies.appendingPathComponent("test.yaml"), atomically: true, encoding: .utf8)
    }

    var globalArguments: [String] {
        ["--clusters", folder.appendingPathComponent("clusters").path,
         "--policies", folder.appendingPathComponent("policies").path,
         "--state", statePath]
    }

    // MARK: - Processes

    /// Prometheus scraping HAProxy's exporter every second, always on `prometheusPort`, so a
    /// restart is the same Prometheus as far as the policy's URL is concerned.
    func startPrometheus() throws {
        let binary = try Tools.require("prometheus")
        let directory = folder.appendingPathComponent("prometheus")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config = directory.appendingPathComponent("prometheus.yml")
        try """
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: haproxy
                static_configs:
                  - targets: ["127.0.0.1:\(haproxy.metricsPort)"]

            """.write(to: config, atomically: true, encoding: .utf8)
        let process = try ManagedProcess(
            name: "prometheus", executable: binary,
            arguments: ["--config.file", config.path, "--storage.tsdb.path", directory.appendingPathComponent("data").path,
                        "--web.listen-address", "127.0.0.1:\(prometheusPort)"],
            logFile: directory.appendingPathComponent("prometheus-\(UUID().uuidString.prefix(4)).log"))
        try Loopback.waitForPort(prometheusPort, of: process, timeout: 30)
        prometheus = process
        // The gate needs a sample: wait for the first scrape.
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let result = try Command.run("/usr/bin/curl", ["-s", "http://127.0.0.1:\(prometheusPort)/api/v1/query?query=up"])
            if result.output.contains("\"value\"") { return }
            usleep(200_000)
        }
        throw TestKitError("prometheus never scraped HAProxy:\n\(process.logTail())")
    }

    func stopPrometheus() {
        prometheus?.stop()
        prometheus = nil
    }

    /// `hey` against HAProxy's frontend: `rate` requests per second per worker, `workers`
    /// workers, for `seconds` (bounded; it stops by itself).
    func startLoad(seconds: Int = 30, rate: Int = 50, workers: Int = 4) throws {
        let hey = try Tools.require("hey")
        load = try ManagedProcess(name: "hey", executable: hey,
                                  arguments: ["-z", "\(seconds)s", "-q", "\(rate)", "-c", "\(workers)", haproxy.url],
                                  logFile: folder.appendingPathComponent("hey-\(UUID().uuidString.prefix(4)).log"))
    }

    /// `switchover run blue green --policy test --until UNTIL` as a process of its own. The
    /// lab's policy has a `drain` section, so without `--until` the run goes on to drained;
    /// the cutover tests stop at promoted.
    func startCoordinator(until: String? = "promoted", environment extra: [String: String] = [:]) throws -> ManagedProcess {
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in extra { environment[key] = value }
        return try ManagedProcess(name: "switchover run", executable: try switchoverExecutable().path,
                                  arguments: ["run", "blue", "green", "--policy", "test"] + (until.map { ["--until", $0] } ?? [])
                                    + globalArguments,
                                  environment: environment,
                                  logFile: folder.appendingPathComponent("run-\(UUID().uuidString.prefix(6)).log"))
    }

    func cli(_ arguments: [String]) throws -> (exitCode: Int32, stdout: String, stderr: String) {
        try runSwitchover(arguments + globalArguments, cwd: folder)
    }

    func statusJSON() throws -> [String: Any] {
        let result = try cli(["status", "--output", "json"])
        guard result.exitCode == 0,
              let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
            throw TestKitError("status failed (\(result.exitCode)): \(result.stdout) \(result.stderr)")
        }
        return object
    }

    // MARK: - Reading back

    func driver() throws -> HAProxyLoadBalancer {
        try HAProxyLoadBalancer(spec: HAProxySpec(socket: haproxy.socketPath, backend: "app"),
                                from: ClusterServers(cluster: "blue", servers: ["blue-1"]),
                                to: ClusterServers(cluster: "green", servers: ["green-1"]), logger: logger)
    }

    /// Live weights straight from HAProxy's runtime API.
    func liveWeights() async throws -> (blue: Int, green: Int) {
        let live = try await driver().currentWeights()
        return (live.assignment.fromTotal, live.assignment.toTotal)
    }

    /// Whether blue-1 is in HAProxy's drain state, read from the runtime API.
    func blueInDrain() async throws -> Bool {
        try await driver().currentWeights().inDrain?.contains("blue-1") == true
    }

    /// hey's report from `startLoad`, once it has ended: responses, non-2xx, errors.
    func loadFigures(timeout: TimeInterval = 90) throws -> (total: Int, non2xx: Int, errors: Int, report: String) {
        guard let load else { throw TestKitError("no load was started") }
        guard load.waitForExit(timeout: timeout) else { throw TestKitError("hey still running after \(timeout)s") }
        let report = (try? String(contentsOf: load.logFile, encoding: .utf8)) ?? ""
        let (total, non2xx, errors) = DrainIntegrationTests.heyFigures(report)
        return (total, non2xx, errors, report)
    }

    func journal() throws -> SQLiteJournal { try SQLiteJournal(path: statePath) }

    /// The latest run's journaled state.
    func state() throws -> CutoverState? {
        guard FileManager.default.fileExists(atPath: statePath) else { return nil }
        let journal = try journal()
        guard let run = try journal.latestRun(), let snapshot = try journal.loadState(run: run.id) else { return nil }
        return try JSONDecoder().decode(CutoverState.self, from: Data(snapshot.json.utf8))
    }

    func events() throws -> [JournalEvent] {
        let journal = try journal()
        guard let run = try journal.latestRun() else { return [] }
        return try journal.events(run: run.id, afterSequence: 0, limit: 100_000)
    }

    /// Polls the journaled state until `condition` holds, or fails after `timeout` seconds.
    @discardableResult
    func waitFor(_ what: String, timeout: TimeInterval = 30, process: ManagedProcess? = nil,
                 _ condition: (CutoverState) -> Bool) throws -> CutoverState {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let state = try? state(), condition(state) { return state }
            if let process, !process.isRunning {
                throw TestKitError("coordinator exited (\(process.exitStatus ?? -1)) before \(what):\n\(process.logTail(lines: 40))")
            }
            usleep(50_000)
        }
        throw TestKitError("timed out waiting for \(what); state: \(String(describing: try? state()))\n\(process?.logTail(lines: 40) ?? "")")
    }

    func waitForExit(_ process: ManagedProcess, timeout: TimeInterval = 60) throws -> Int32 {
        guard process.waitForExit(timeout: timeout), let status = process.exitStatus else {
            throw TestKitError("coordinator still running after \(timeout)s:\n\(process.logTail(lines: 40))")
        }
        return status
    }
}
