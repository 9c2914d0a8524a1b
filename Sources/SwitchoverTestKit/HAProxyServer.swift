import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real HAProxy (Debian's `haproxy`, run as `haproxy -f CFG -db`) on 127.0.0.1 with a config
/// the kit writes: a frontend on a free port, one backend (`app` by default) with the given
/// servers and weights, the runtime API on a UNIX socket (`admin.sock`, level admin) and, when
/// asked, on TCP too, and a metrics frontend serving HAProxy's Prometheus exporter at `/metrics`.
///
/// Started with `await HAProxyServer.start(...)` in tests (the blocking `init` is the
/// benchmark's); stopped with `await stop()`, or `stopInBackground()` in a `defer`.
///
/// `@unchecked Sendable`: `process` changes only in `restart()`, and is read and written under
/// `lock` (never held across a suspension).
public final class HAProxyServer: @unchecked Sendable {
    /// One `server` line of the backend.
    public struct Server: Sendable, Hashable {
        public var name: String
        /// `127.0.0.1:port`; a port nothing listens on is fine where no traffic is sent
        /// (HAProxy runs no health checks here).
        public var address: String
        public var weight: Int
        public init(name: String, address: String, weight: Int) {
            self.name = name
            self.address = address
            self.weight = weight
        }
    }

    public let directory: URL
    public let backend: String
    /// The traffic frontend: `http://127.0.0.1:port/`.
    public let port: Int
    /// The metrics frontend (`/metrics`, Prometheus exporter).
    public let metricsPort: Int
    /// The runtime API as a UNIX socket path.
    public let socketPath: String
    /// The runtime API on TCP, `tcp://127.0.0.1:port`, when started with `tcpAdmin: true`.
    public let tcpAdminAddress: String?
    public let configFile: URL
    private let executable: String
    private let lock = NSLock()
    private var process: ManagedProcess

    /// Writes the config and starts HAProxy; returns once the frontend and the admin socket
    /// answer, suspending while it waits.
    ///
    /// `backendLines`: extra lines in the backend before its servers (e.g. a `use-server` rule
    /// pinning requests to one server, as sticky clients are pinned while it drains).
    public static func start(servers: [Server], backend: String = "app", balance: String = "roundrobin",
                             tcpAdmin: Bool = false, backendLines: [String] = [], in parent: URL? = nil) async throws -> HAProxyServer {
        let server = try HAProxyServer(launching: servers, backend: backend, balance: balance, tcpAdmin: tcpAdmin,
                                       backendLines: backendLines, in: parent)
        do {
            try await server.ready(server.current)
        } catch {
            server.stopInBackground()
            throw error
        }
        return server
    }

    /// `start` on the calling thread, which it blocks until HAProxy answers (the benchmark's labs).
    @available(*, noasync, message: "blocks its thread: `try await HAProxyServer.start(...)`")
    public convenience init(servers: [Server], backend: String = "app", balance: String = "roundrobin",
                            tcpAdmin: Bool = false, backendLines: [String] = [], in parent: URL? = nil) throws {
        try self.init(launching: servers, backend: backend, balance: balance, tcpAdmin: tcpAdmin,
                      backendLines: backendLines, in: parent)
        do {
            try readyBlocking(current)
        } catch {
            stopInBackground()
            throw error
        }
    }

    /// Writes the config and starts the process, without waiting for it to answer.
    private init(launching servers: [Server], backend: String, balance: String, tcpAdmin: Bool,
                 backendLines: [String], in parent: URL?) throws {
        let haproxy = try Tools.require("haproxy")
        let directory = try parent.map { p -> URL in
            let d = p.appendingPathComponent("haproxy")
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            return d
        } ?? TemporaryDirectory.make("haproxy")
        let port = try Loopback.freePort()
        let metricsPort = try Loopback.freePort()
        let socketPath = directory.appendingPathComponent("admin.sock").path
        var tcpAdminPort: Int?
        if tcpAdmin { tcpAdminPort = try Loopback.freePort() }
        var lines = [
            "global",
            "    stats socket \(socketPath) mode 600 level admin",
        ]
        if let tcpAdminPort { lines.append("    stats socket ipv4@127.0.0.1:\(tcpAdminPort) level admin") }
        lines += [
            "    maxconn 4000",
            "",
            "defaults",
            "    mode http",
            "    timeout connect 2s",
            "    timeout client 30s",
            "    timeout server 30s",
            "",
            "frontend traffic",
            "    bind 127.0.0.1:\(port)",
            "    default_backend \(backend)",
            "",
            "frontend metrics",
            "    bind 127.0.0.1:\(metricsPort)",
            "    http-request use-service prometheus-exporter if { path /metrics }",
            "",
            "backend \(backend)",
            "    balance \(balance)",
        ] + backendLines.map { "    " + $0 }
        for server in servers {
            lines.append("    server \(server.name) \(server.address) weight \(server.weight)")
        }
        let configFile = directory.appendingPathComponent("haproxy.cfg")
        try (lines.joined(separator: "\n") + "\n").write(to: configFile, atomically: true, encoding: .utf8)

        self.directory = directory
        self.backend = backend
        self.port = port
        self.metricsPort = metricsPort
        self.socketPath = socketPath
        self.tcpAdminAddress = tcpAdminPort.map { "tcp://127.0.0.1:\($0)" }
        self.configFile = configFile
        self.executable = haproxy
        self.process = try Self.launch(haproxy, configFile: configFile, directory: directory)
    }

    private static func launch(_ executable: String, configFile: URL, directory: URL) throws -> ManagedProcess {
        try ManagedProcess(name: "haproxy", executable: executable, arguments: ["-f", configFile.path, "-db"],
                           logFile: directory.appendingPathComponent("haproxy.log"))
    }

    /// Waits until `process` listens on the frontend and has created the admin socket.
    ///
    /// The admin socket must accept a connection, not merely exist: HAProxy renames the socket
    /// file into place before it listens on it, and a driver that connects in between is refused
    /// (seen once in a parallel run, on a machine busy enough to stop HAProxy between the two).
    private func ready(_ process: ManagedProcess) async throws {
        try await Loopback.waitForPort(port, of: process)
        let socketPath = self.socketPath
        let answering = await Wait.until(timeout: 10) {
            Loopback.acceptsConnections(unixSocket: socketPath) || !process.isRunning
        }
        guard answering, process.isRunning else {
            throw TestKitError("haproxy's admin socket \(socketPath) did not accept connections:\n\(process.logTail())")
        }
    }

    @available(*, noasync)
    private func readyBlocking(_ process: ManagedProcess) throws {
        try Loopback.waitForPort(port, of: process)
        let deadline = Date().addingTimeInterval(10)
        while !Loopback.acceptsConnections(unixSocket: socketPath) {
            guard Date() < deadline, process.isRunning else {
                throw TestKitError("haproxy's admin socket \(socketPath) did not accept connections:\n\(process.logTail())")
            }
            usleep(10_000)
        }
    }

    private var current: ManagedProcess { lock.withLock { process } }

    /// The traffic URL: `http://127.0.0.1:port/`.
    public var url: String { "http://127.0.0.1:\(port)/" }
    public var metricsURL: String { "http://127.0.0.1:\(metricsPort)/metrics" }

    public var pid: Int32 { current.pid }

    /// Stops HAProxy and starts it again from the same config, as an operator's restart would:
    /// every runtime weight and server state is forgotten (drift tests). `crash`: SIGKILL
    /// instead of a graceful stop, as when the machine or the process dies.
    /// `downFor`: how long it stays down between the two. Suspends while it waits.
    public func restart(crash: Bool = false, downFor: TimeInterval = 0) async throws {
        let old = current
        if crash {
            old.signal(SIGKILL)
            await old.waitForExit(timeout: 10)
        }
        await old.stop()
        if downFor > 0 { try await Task.sleep(for: .seconds(downFor)) }
        // The old process has exited: its sockets are closed; HAProxy rebinds the UNIX socket.
        let new = try Self.launch(executable, configFile: configFile, directory: directory)
        lock.withLock { process = new }
        try await ready(new)
    }

    /// Stops HAProxy (SIGTERM, SIGKILL after 5 s); returns once it has exited.
    public func stop() async {
        await current.stop()
    }

    /// `stop` on the calling thread, which it blocks until HAProxy has exited (the benchmark's labs).
    @available(*, noasync, message: "blocks its thread: `await stop()`, or `stopInBackground()` in a defer")
    public func stop() {
        current.stop()
    }

    /// For a `defer` or `deinit`: SIGTERM now, SIGKILL from a thread of its own later.
    public func stopInBackground() {
        current.stopInBackground()
    }

    /// Sends `signal` to HAProxy (SIGSTOP freezes it: its socket accepts and never answers).
    public func signal(_ signal: Int32) {
        current.signal(signal)
    }

    /// One line to the runtime API over the UNIX socket (with `socat`), as an operator types it;
    /// returns HAProxy's answer. For tests that change weights behind Switchover's back.
    @discardableResult
    public func runtimeCommand(_ line: String) async throws -> String {
        let socat = try Tools.require("socat")
        let result = try await Command.run(socat, ["-t", "2", "-", "UNIX-CONNECT:\(socketPath)"], input: line + "\n")
        guard result.status == 0 else { throw TestKitError("socat \(line): exit \(result.status): \(result.output)") }
        return result.output
    }

    deinit { process.stopInBackground() }
}
