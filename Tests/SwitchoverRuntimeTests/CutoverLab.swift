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

    init(_ name: String, policy: PolicyOptions = PolicyOptions()) throws {
        let backends = try Lab.startBackends(name)
        haproxy = try HAProxyServer(servers: [.init(name: "blue-1", address: backends.blue.address, weight: 1),
                                              .init(name: "green-1", address: backends.green.address, weight: 0)],
                                    backendLines: policy.backendLines, in: backends.folder)
        prometheusPort = try Loopback.freePort()
        super.init(backends: backends, frontURL: haproxy.url)
        if policy.prometheusGate { try startPrometheus() }
        try writeConfiguration(policy)
    }

    deinit {
        stopAll()
    }

    override func stopAll() {
        load?.stop(grace: 1)
        prometheus?.stop()
        haproxy.stop()
        super.stopAll()
    }

    // MARK: - Configuration

    func writeConfiguration(_ options: PolicyOptions) throws {
        let prometheusGate = "name: haproxy-up\nprometheus:\n  url: http://127.0.0.1:\(prometheusPort)\n  query: 'sum(up)'\n  min: 1"
        try writeConfiguration(options, loadBalancer: PolicyDocument.haproxy(socket: haproxy.socketPath),
                               servers: ["blue": ["blue-1"], "green": ["green-1"]],
                               extraGates: options.prometheusGate ? [prometheusGate] : [])
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
}
