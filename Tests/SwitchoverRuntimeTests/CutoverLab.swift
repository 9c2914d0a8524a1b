import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverTestKit

/// A whole cutover on loopback with a real HAProxy in front (blue-1 weight 1, green-1 weight 0:
/// 0% to green) of the lab's nginx backends, optionally a real Prometheus scraping HAProxy's
/// exporter on a port that survives its restart; the rest (PKI, configuration, journal, the
/// BUILT `switchover` binary) is `Lab`'s.
final class CutoverLab: Lab, @unchecked Sendable {
    let haproxy: HAProxyServer
    let prometheusPort: Int
    var prometheus: ManagedProcess?

    init(_ name: String, policy: PolicyOptions = PolicyOptions()) async throws {
        let backends = try await Lab.startBackends(name)
        haproxy = try await HAProxyServer.start(servers: [.init(name: "blue-1", address: backends.blue.address, weight: 1),
                                                          .init(name: "green-1", address: backends.green.address, weight: 0)],
                                                backendLines: policy.backendLines, in: backends.folder)
        prometheusPort = try Loopback.freePort()
        super.init(backends: backends, frontURL: haproxy.url)
        if policy.prometheusGate { try await startPrometheus() }
        try await writeConfiguration(policy)
    }

    deinit {
        stopAll()
    }

    override func stopAll() {
        load?.stopInBackground(grace: 1)
        prometheus?.stopInBackground()
        haproxy.stopInBackground()
        super.stopAll()
    }

    // MARK: - Configuration

    func writeConfiguration(_ options: PolicyOptions) async throws {
        let prometheusGate = "name: haproxy-up\nprometheus:\n  url: http://127.0.0.1:\(prometheusPort)\n  query: 'sum(up)'\n  min: 1"
        try await writeConfiguration(options, loadBalancer: PolicyDocument.haproxy(socket: haproxy.socketPath),
                               servers: ["blue": ["blue-1"], "green": ["green-1"]],
                               extraGates: options.prometheusGate ? [prometheusGate] : [])
    }

    // MARK: - Processes

    /// Prometheus scraping HAProxy's exporter every second, always on `prometheusPort`, so a
    /// restart is the same Prometheus as far as the policy's URL is concerned.
    func startPrometheus() async throws {
        prometheus = try await Self.startPrometheus(scraping: haproxy, on: prometheusPort, in: folder)
    }

    /// A real Prometheus on `port` scraping `haproxy`'s exporter every second, in `folder`/prometheus;
    /// returns once it has scraped once (a gate or a traffic query needs a sample). Any lab
    /// with an HAProxy in front uses it.
    static func startPrometheus(scraping haproxy: HAProxyServer, on port: Int, in folder: URL) async throws -> ManagedProcess {
        try await startPrometheus(scraping: [haproxy], on: port, in: folder)
    }

    /// The same scraping several HAProxy instances' exporters (a fleet's): PromQL's `sum` adds
    /// their counters up.
    static func startPrometheus(scraping haproxies: [HAProxyServer], on port: Int, in folder: URL) async throws -> ManagedProcess {
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
                  - targets: [\(haproxies.map { "\"127.0.0.1:\($0.metricsPort)\"" }.joined(separator: ", "))]

            """.write(to: config, atomically: true, encoding: .utf8)
        let process = try ManagedProcess(
            name: "prometheus", executable: binary,
            arguments: ["--config.file", config.path, "--storage.tsdb.path", directory.appendingPathComponent("data").path,
                        "--web.listen-address", "127.0.0.1:\(port)"],
            logFile: directory.appendingPathComponent("prometheus-\(UUID().uuidString.prefix(4)).log"))
        try await Loopback.waitForPort(port, of: process, timeout: 30)
        let query = "http://127.0.0.1:\(port)/api/v1/query?query=up"
        let scraped = try await Wait.until(timeout: 20, every: .milliseconds(200)) {
            try await Command.run("/usr/bin/curl", ["-s", query]).output.contains("\"value\"")
        }
        guard scraped else {
            process.stopInBackground()
            throw TestKitError("prometheus never scraped HAProxy:\n\(process.logTail())")
        }
        return process
    }

    /// Stops Prometheus; returns once it has exited.
    func stopPrometheus() async {
        await prometheus?.stop()
        prometheus = nil
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

    /// The lowest and highest share to green HAProxy reads while `body` runs (read every
    /// `every`), and how many reads succeeded: a caller asserts `reads > 0`, so a watch that
    /// never read anything cannot pass for one that saw nothing wrong.
    func watchingShare<T>(every: Duration = .milliseconds(10), _ body: () async throws -> T) async throws
        -> (result: T, lowest: Double, highest: Double, reads: Int) {
        let driver = try driver()
        let watch = Task { () -> (Double, Double, Int) in
            var lowest = 100.0, highest = 0.0, reads = 0
            while !Task.isCancelled {
                if let live = try? await driver.currentWeights() {
                    lowest = min(lowest, live.effectivePercentToTarget)
                    highest = max(highest, live.effectivePercentToTarget)
                    reads += 1
                }
                try? await Task.sleep(for: every)
            }
            return (lowest, highest, reads)
        }
        let result: T
        do {
            result = try await body()
        } catch {
            watch.cancel()
            throw error
        }
        watch.cancel()
        let (lowest, highest, reads) = await watch.value
        return (result, lowest, highest, reads)
    }

    /// Whether blue-1 is in HAProxy's drain state, read from the runtime API.
    func blueInDrain() async throws -> Bool {
        try await driver().currentWeights().inDrain?.contains("blue-1") == true
    }
}
