import Foundation

/// A real Prometheus (`/usr/bin/prometheus`) on 127.0.0.1 and a free port, scraping one target
/// at a given interval, with its TSDB in its own folder.
public final class PrometheusServer: Sendable {
    public let directory: URL
    public let port: Int
    private let routePrefix: String
    private let process: ManagedProcess

    /// `target`: `host:port` to scrape at `metricsPath` every `interval` (a Prometheus
    /// duration, such as `1s`). `routePrefix` (such as `/prometheus`): Prometheus serves its
    /// API under that path, as it does behind a path-routing proxy. Returns once it listens.
    public static func start(target: String, metricsPath: String = "/metrics", interval: String = "1s",
                             job: String = "target", routePrefix: String? = nil, in parent: URL? = nil) async throws -> PrometheusServer {
        let server = try PrometheusServer(launching: target, metricsPath: metricsPath, interval: interval, job: job,
                                          routePrefix: routePrefix, in: parent)
        do {
            try await Loopback.waitForPort(server.port, of: server.process, timeout: 30)
        } catch {
            server.stopInBackground()
            throw error
        }
        return server
    }

    /// Writes the config and starts Prometheus, without waiting for it to listen.
    private init(launching target: String, metricsPath: String, interval: String, job: String, routePrefix: String?,
                 in parent: URL?) throws {
        let prometheus = try Tools.require("prometheus")
        let directory = try parent.map { p -> URL in
            let d = p.appendingPathComponent("prometheus")
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            return d
        } ?? TemporaryDirectory.make("prometheus")
        let port = try Loopback.freePort()
        let config = """
            global:
              scrape_interval: \(interval)
              evaluation_interval: \(interval)
            scrape_configs:
              - job_name: \(job)
                metrics_path: \(metricsPath)
                scrape_interval: \(interval)
                static_configs:
                  - targets: ["\(target)"]

            """
        let configFile = directory.appendingPathComponent("prometheus.yml")
        try config.write(to: configFile, atomically: true, encoding: .utf8)
        let process = try ManagedProcess(
            name: "prometheus", executable: prometheus,
            arguments: ["--config.file", configFile.path,
                        "--storage.tsdb.path", directory.appendingPathComponent("data").path,
                        "--web.listen-address", "127.0.0.1:\(port)"]
                + (routePrefix.map { ["--web.route-prefix", $0] } ?? []),
            logFile: directory.appendingPathComponent("prometheus.log"))
        self.directory = directory
        self.port = port
        self.routePrefix = routePrefix ?? ""
        self.process = process
    }

    /// Where its API is: `http://127.0.0.1:PORT` and the route prefix, if any.
    public var url: URL { URL(string: "http://127.0.0.1:\(port)\(routePrefix)")! }
    public var pid: Int32 { process.pid }

    /// Stops Prometheus; returns once it has exited.
    public func stop() async { await process.stop() }

    /// For a `defer` or `deinit`: SIGTERM now, SIGKILL from a thread of its own later.
    public func stopInBackground() { process.stopInBackground() }

    deinit { process.stopInBackground() }
}
