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
/// Several backends behind one frontend (`start(backends:...)`, the fleet labs): each backend
/// takes the requests whose path begins with its `pathPrefix` followed by `/` (`/cart/...` goes
/// to `be_cart`); a request no prefix matches gets HAProxy's 503, so a wrong URL shows up as a
/// failed request instead of quietly landing in some backend. Such an instance can also be
/// `kill()`ed and `startAgain()`ed, or `reload()`ed the way an operator reloads HAProxy (a new
/// process takes the listening sockets over from the old one, which finishes its requests).
///
/// `@unchecked Sendable`: `process` and `retired` change only in `restart()`, `kill()`,
/// `startAgain()` and `reload()`, and are read and written under `lock` (never held across a
/// suspension).
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

    /// One backend of an instance started with `start(backends:...)`: its servers, and the path
    /// prefix that routes requests to it.
    public struct Backend: Sendable, Hashable {
        public var name: String
        public var servers: [Server]
        /// Requests whose path starts with `pathPrefix + "/"` go to this backend.
        public var pathPrefix: String
        /// `pathPrefix` defaults to `/` + `name`.
        public init(name: String, servers: [Server], pathPrefix: String? = nil) {
            self.name = name
            self.servers = servers
            self.pathPrefix = pathPrefix ?? "/" + name
        }
    }

    /// One server as `show servers state` reports it (`serverStates()`).
    public struct ServerState: Sendable, Hashable {
        public var backend: String
        public var name: String
        /// `srv_uweight`: the weight `set server B/S weight N` sets.
        public var weight: Int
        /// `srv_admin_state`: a bit set; 0x08 (forced drain) is `set server B/S state drain`.
        public var adminState: Int
        /// `srv_op_state`: 0 stopped, 1 starting, 2 running, 3 stopping.
        public var operationalState: Int
        /// In drain (forced by the runtime API, or inherited), weight notwithstanding.
        public var inDrain: Bool { adminState & 0x18 != 0 }
    }

    public let directory: URL
    /// The backend of a one-backend instance; the first backend of a `start(backends:)` one.
    public let backend: String
    /// Every backend, in the order given (one for `start(servers:...)`).
    public let backends: [Backend]
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
    /// Processes a `reload()` replaced: they finish their requests and exit by themselves;
    /// stopped with the instance in case they have not.
    private var retired: [ManagedProcess] = []
    /// The admin socket hands its listening sockets to a reloading process (`expose-fd
    /// listeners`): instances from `start(backends:...)`.
    private let seamlessReload: Bool

    /// Writes the config and starts HAProxy; returns once the frontend and the admin socket
    /// answer, suspending while it waits.
    ///
    /// `backendLines`: extra lines in the backend before its servers (e.g. a `use-server` rule
    /// pinning requests to one server, as sticky clients are pinned while it drains).
    public static func start(servers: [Server], backend: String = "app", balance: String = "roundrobin",
                             tcpAdmin: Bool = false, backendLines: [String] = [], in parent: URL? = nil) async throws -> HAProxyServer {
        let server = try HAProxyServer(launching: [Backend(name: backend, servers: servers)], name: "haproxy",
                                       balance: balance, tcpAdmin: tcpAdmin, backendLines: backendLines,
                                       defaultBackend: true, in: parent)
        do {
            try await server.ready(server.current)
        } catch {
            server.stopInBackground()
            throw error
        }
        return server
    }

    /// Writes a config with several backends behind one frontend, routed by path prefix (the
    /// type's comment), and starts HAProxy; returns once the frontend and the admin socket
    /// answer, suspending while it waits. `name` is the instance's folder under `parent` (two
    /// instances in one lab need two names) and the prefix of its log lines.
    public static func start(backends: [Backend], name: String, balance: String = "roundrobin",
                             tcpAdmin: Bool = false, in parent: URL? = nil) async throws -> HAProxyServer {
        guard !backends.isEmpty else { throw TestKitError("an HAProxy instance needs at least one backend") }
        let server = try HAProxyServer(launching: backends, name: name, balance: balance, tcpAdmin: tcpAdmin,
                                       backendLines: [], defaultBackend: false, in: parent)
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
        try self.init(launching: [Backend(name: backend, servers: servers)], name: "haproxy", balance: balance,
                      tcpAdmin: tcpAdmin, backendLines: backendLines, defaultBackend: true, in: parent)
        do {
            try readyBlocking(current)
        } catch {
            stopInBackground()
            throw error
        }
    }

    /// Writes the config and starts the process, without waiting for it to answer.
    ///
    /// `defaultBackend`: one backend taking every request (`start(servers:...)`, whose config
    /// text is as it always was); otherwise each backend takes its path prefix (`start(backends:)`),
    /// and the admin socket can hand the listeners over on `reload()`.
    private init(launching backends: [Backend], name: String, balance: String, tcpAdmin: Bool,
                 backendLines: [String], defaultBackend: Bool, in parent: URL?) throws {
        let haproxy = try Tools.require("haproxy")
        let directory = try parent.map { p -> URL in
            let d = p.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            return d
        } ?? TemporaryDirectory.make(name)
        let port = try Loopback.freePort()
        let metricsPort = try Loopback.freePort()
        let socketPath = directory.appendingPathComponent("admin.sock").path
        var tcpAdminPort: Int?
        if tcpAdmin { tcpAdminPort = try Loopback.freePort() }
        var lines = [
            "global",
            "    stats socket \(socketPath) mode 600 level admin" + (defaultBackend ? "" : " expose-fd listeners"),
        ]
        if let tcpAdminPort { lines.append("    stats socket ipv4@127.0.0.1:\(tcpAdminPort) level admin") }
        lines.append("    maxconn 4000")
        // A reloaded process's predecessor ends its last requests within this, then exits.
        if !defaultBackend { lines.append("    hard-stop-after 10s") }
        lines += [
            "",
            "defaults",
            "    mode http",
            "    timeout connect 2s",
            "    timeout client 30s",
            "    timeout server 30s",
            "",
            "frontend traffic",
            "    bind 127.0.0.1:\(port)",
        ]
        if defaultBackend {
            lines.append("    default_backend \(backends[0].name)")
        } else {
            for backend in backends {
                lines.append("    use_backend \(backend.name) if { path_beg \(backend.pathPrefix)/ }")
            }
        }
        lines += [
            "",
            "frontend metrics",
            "    bind 127.0.0.1:\(metricsPort)",
            "    http-request use-service prometheus-exporter if { path /metrics }",
        ]
        for backend in backends {
            lines += [
                "",
                "backend \(backend.name)",
                "    balance \(balance)",
            ] + backendLines.map { "    " + $0 }
            for server in backend.servers {
                lines.append("    server \(server.name) \(server.address) weight \(server.weight)")
            }
        }
        let configFile = directory.appendingPathComponent("haproxy.cfg")
        try (lines.joined(separator: "\n") + "\n").write(to: configFile, atomically: true, encoding: .utf8)

        self.directory = directory
        self.backend = backends[0].name
        self.backends = backends
        self.port = port
        self.metricsPort = metricsPort
        self.socketPath = socketPath
        self.tcpAdminAddress = tcpAdminPort.map { "tcp://127.0.0.1:\($0)" }
        self.configFile = configFile
        self.executable = haproxy
        self.seamlessReload = !defaultBackend
        self.process = try Self.launch(haproxy, configFile: configFile, directory: directory)
    }

    /// `extra`: more arguments (a reload's `-sf PID -x SOCKET`); a reloaded process writes a log
    /// of its own next to `haproxy.log`.
    private static func launch(_ executable: String, configFile: URL, directory: URL,
                               extra: [String] = []) throws -> ManagedProcess {
        try ManagedProcess(name: "haproxy", executable: executable, arguments: ["-f", configFile.path, "-db"] + extra,
                           logFile: directory.appendingPathComponent(extra.isEmpty ? "haproxy.log" : "haproxy-reload-\(UUID().uuidString.prefix(4)).log"))
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

    /// The URL of `backend`'s path prefix on the traffic frontend: `http://127.0.0.1:port/cart/`
    /// (instances from `start(backends:...)`).
    public func url(for backend: String) -> String {
        let prefix = backends.first { $0.name == backend }?.pathPrefix ?? "/" + backend
        return "http://127.0.0.1:\(port)\(prefix)/"
    }

    /// Whether the current process is alive (false after `kill()` until `startAgain()`).
    public var isRunning: Bool { current.isRunning }

    /// SIGKILLs HAProxy, as when the process or its machine dies, and returns once it has
    /// exited; it stays down (its ports refuse connections) until `startAgain()`.
    public func kill() async {
        let old = current
        old.signal(SIGKILL)
        await old.waitForExit(timeout: 10)
        await old.stop()
    }

    /// Starts HAProxy again from the same config after `kill()` or `stop()`: the configured
    /// weights, no runtime weight or drain state. Returns once it answers.
    public func startAgain() async throws {
        let old = current
        await old.stop()
        let new = try Self.launch(executable, configFile: configFile, directory: directory)
        lock.withLock { process = new }
        try await ready(new)
    }

    /// Reloads HAProxy the way an operator does (`haproxy -f CFG -sf OLDPID -x ADMIN_SOCKET`): a
    /// new process reads the config again, takes the listening sockets over from the old one
    /// through the admin socket (no connection is refused meanwhile) and tells it to finish its
    /// requests and exit. The new process has the configured weights: every runtime weight and
    /// drain state is forgotten, and its PID and uptime are new. Returns once the admin socket
    /// is the new process's (`show info` names its PID). Instances from `start(backends:...)`
    /// only (their admin socket exposes the listeners).
    public func reload() async throws {
        guard seamlessReload else { throw TestKitError("reload() needs an instance from start(backends:...)") }
        let old = current
        let new = try Self.launch(executable, configFile: configFile, directory: directory,
                                  extra: ["-sf", String(old.pid), "-x", socketPath])
        lock.withLock {
            process = new
            retired.append(old)
        }
        let pid = new.pid
        let answering = await Wait.until(timeout: 15, every: .milliseconds(20)) {
            guard new.isRunning else { return true }
            return (try? await self.query("show info"))?.contains("\nPid: \(pid)\n") == true
        }
        guard answering, new.isRunning else {
            throw TestKitError("the reloaded haproxy (PID \(pid)) did not take over \(socketPath):\n\(new.logTail())")
        }
    }

    /// Stops HAProxy (SIGTERM, SIGKILL after 5 s); returns once it has exited.
    public func stop() async {
        for old in lock.withLock({ retired }) { await old.stop() }
        await current.stop()
    }

    /// `stop` on the calling thread, which it blocks until HAProxy has exited (the benchmark's labs).
    @available(*, noasync, message: "blocks its thread: `await stop()`, or `stopInBackground()` in a defer")
    public func stop() {
        for old in lock.withLock({ retired }) { old.stop() }
        current.stop()
    }

    /// For a `defer` or `deinit`: SIGTERM now, SIGKILL from a thread of its own later.
    public func stopInBackground() {
        for old in lock.withLock({ retired }) { old.stopInBackground() }
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

    /// One command to the runtime API over the UNIX socket, without a helper process: connects,
    /// sends `line`, reads the answer until HAProxy closes (2 s at most). The socket calls block,
    /// so they are made on a thread of their own. For polls too frequent for `socat`.
    public func query(_ line: String) async throws -> String {
        let path = socketPath
        return try await OwnThread.run("haproxy query") { try Self.queryBlocking(line, unixSocket: path) }
    }

    /// `query` on the calling thread, which it blocks for up to 2 s: a watcher's own thread.
    public func queryBlocking(_ line: String) throws -> String {
        try Self.queryBlocking(line, unixSocket: socketPath)
    }

    static func queryBlocking(_ line: String, unixSocket path: String) throws -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestKitError("socket(): errno \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw TestKitError("socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { throw TestKitError("connect \(path): errno \(errno)") }
        let request = Array((line + "\n").utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else {
            throw TestKitError("send to \(path): errno \(errno)")
        }
        var answer = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n < 0 { throw TestKitError("recv from \(path): errno \(errno)") }
            if n == 0 { break }
            answer += buffer[0..<n]
        }
        return String(decoding: answer, as: UTF8.self)
    }

    /// Every server of every backend as `show servers state` reports it, by backend and server
    /// name: the runtime truth, read without any Switchover code.
    public func serverStates() async throws -> [String: [String: ServerState]] {
        try Self.parseServerStates(try await query("show servers state"))
    }

    /// `serverStates` on the calling thread (a watcher's own thread).
    public func serverStatesBlocking() throws -> [String: [String: ServerState]] {
        try Self.parseServerStates(try queryBlocking("show servers state"))
    }

    /// Parses `show servers state`: a version line (`1`), a `# be_id be_name srv_id srv_name
    /// ...` header, then one line per server; columns are found by the header's names.
    public static func parseServerStates(_ text: String) throws -> [String: [String: ServerState]] {
        let lines = text.split(separator: "\n").map(String.init)
        guard let header = lines.first(where: { $0.hasPrefix("# ") }) else {
            throw TestKitError("show servers state: no header in \(text.prefix(300))")
        }
        let names = header.dropFirst(2).split(separator: " ").map(String.init)
        func column(_ name: String) throws -> Int {
            guard let index = names.firstIndex(of: name) else { throw TestKitError("show servers state: no column \(name) in \(header)") }
            return index
        }
        let (be, srv, weight, admin, op) = (try column("be_name"), try column("srv_name"), try column("srv_uweight"),
                                            try column("srv_admin_state"), try column("srv_op_state"))
        var states: [String: [String: ServerState]] = [:]
        for line in lines where !line.hasPrefix("#") {
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count > max(be, srv, weight, admin, op) else { continue }  // the version line
            guard let w = Int(fields[weight]), let a = Int(fields[admin]), let o = Int(fields[op]) else {
                throw TestKitError("show servers state: unreadable line \(line)")
            }
            states[fields[be], default: [:]][fields[srv]] = ServerState(backend: fields[be], name: fields[srv], weight: w,
                                                                        adminState: a, operationalState: o)
        }
        return states
    }

    deinit {
        for old in retired { old.stopInBackground() }
        process.stopInBackground()
    }
}
