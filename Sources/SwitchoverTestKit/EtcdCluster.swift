import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real etcd 3.4 cluster (Debian's `etcd`, one process per member) on 127.0.0.1 and free
/// ports, for the tests of what Switchover keeps in etcd: its journal and its coordinator lock
/// must survive the loss of a member and refuse to pretend when quorum is gone, and only a real
/// Raft group shows that. Each member has its own data directory and log file under `directory`.
///
/// A member can be `kill()`ed (SIGKILL: a crash, nothing flushed, no leadership handed over),
/// `stopMember()`ed (SIGTERM: a clean shutdown) and `startAgain()`ed with the same name, data
/// directory and ports, the way an operator restarts a failed node.
///
/// With `tls: true` clients must present a certificate signed by the cluster's CA
/// (`--client-cert-auth`); `tlsFiles` holds the CA and a client certificate and key for them.
/// Peers talk plain HTTP to one another: the peer traffic never leaves loopback and no code
/// under test speaks the peer protocol, so peer TLS would only slow the start down.
///
/// `etcdctl(_:)` runs the real `etcdctl` against the cluster, so a test can see through an
/// independent client what the code under test wrote, or write what it must find.
///
/// `@unchecked Sendable`: `processes` (which process is each member now) changes on `kill`,
/// `stopMember`, `startAgain` and `stop`, always under `lock`, which is never held across a
/// suspension or a wait; everything else is immutable after `start`.
public final class EtcdCluster: @unchecked Sendable {
    /// The CA that signed the servers' certificates, and a client certificate and key it signed
    /// (extendedKeyUsage clientAuth), for clients of a cluster started with `tls: true`.
    public struct TLSFiles: Sendable {
        public let caFile: URL
        public let clientCertificate: URL
        public let clientKey: URL
    }

    /// What stays the same across a member's restarts.
    private struct Member: Sendable {
        let name: String
        let clientPort: Int
        let peerPort: Int
        let dataDirectory: URL
        let logFile: URL
    }

    /// The server certificate every member presents to clients.
    private struct ServerTLS: Sendable {
        let certificate: URL
        let key: URL
        let trustedCA: URL
    }

    /// Holds the cluster's folder: `pki/` with `tls: true`, and per member `mN.data`, `mN.log`.
    public let directory: URL
    public let tlsFiles: TLSFiles?
    /// `--initial-cluster-token`: unique per cluster, so that members of two clusters the tests
    /// run side by side can never join each other, even if a port is reused.
    public let token: String
    private let members: [Member]
    private let serverTLS: ServerTLS?
    private let etcdPath: String
    private let etcdctlPath: String
    private let lock = NSLock()
    /// The running process of each member; nil while it is down.
    private var processes: [ManagedProcess?]

    /// Starts `members` members; returns once every member answers a linearizable read (the
    /// cluster has a leader and each member reaches it): about 0.4 s for 3 members.
    ///
    /// The members start one after the other, each once the one before serves its peers. A new
    /// member first asks every other member whether it was already bootstrapped, waiting up to
    /// 1 s for each answer; a member that has bound its peer port but does not serve on it yet
    /// lets that second run out, so three members started together spend 2 s in those checks,
    /// whereas a member that serves answers at once and one not started yet refuses at once.
    /// With `tls: true`, makes a CA, a server certificate for 127.0.0.1 and a client
    /// certificate first (`tlsFiles`).
    public static func start(members: Int = 3, tls: Bool = false, in parent: URL? = nil) async throws -> EtcdCluster {
        guard members >= 1 else { throw TestKitError("an etcd cluster needs at least one member, not \(members)") }
        let directory = try parent.map { p -> URL in
            let d = p.appendingPathComponent("etcd-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            return d
        } ?? TemporaryDirectory.make("etcd")
        var serverTLS: ServerTLS?
        var tlsFiles: TLSFiles?
        if tls {
            let pki = try TestPKI(directory: directory.appendingPathComponent("pki"))
            let ca = try await pki.makeRoot(name: "etcd-ca")
            // serverAndClient, not server: with --client-cert-auth, etcd 3.4's gRPC gateway
            // dials its own gRPC server presenting this same certificate as a client one, and
            // fails unless the certificate allows clientAuth too.
            let server = try await pki.makeLeaf(name: "etcd-server", sans: ["127.0.0.1", "localhost"], issuer: ca,
                                                usage: .serverAndClient)
            let client = try await pki.makeLeaf(name: "etcd-client", sans: [], issuer: ca, usage: .client)
            serverTLS = ServerTLS(certificate: server.certificateFile, key: server.keyFile, trustedCA: ca.certificateFile)
            tlsFiles = TLSFiles(caFile: ca.certificateFile, clientCertificate: client.certificateFile,
                                clientKey: client.keyFile)
        }
        let cluster = try EtcdCluster(count: members, directory: directory, serverTLS: serverTLS, tlsFiles: tlsFiles)
        do {
            let deadline = ContinuousClock.now + .seconds(30)
            for member in 0..<members {
                try cluster.launch(member, state: "new")
                try await cluster.waitUntilServingPeers(member, until: deadline)
            }
            for member in 0..<members {
                try await cluster.waitForLinearizableRead(through: member, until: deadline)
            }
        } catch {
            cluster.stopInBackground()
            throw error
        }
        return cluster
    }

    private init(count: Int, directory: URL, serverTLS: ServerTLS?, tlsFiles: TLSFiles?) throws {
        self.etcdPath = try Tools.require("etcd")
        self.etcdctlPath = try Tools.require("etcdctl")
        self.directory = directory
        self.serverTLS = serverTLS
        self.tlsFiles = tlsFiles
        self.token = "switchover-test-\(UUID().uuidString)"
        let ports = try Self.distinctFreePorts(2 * count)
        self.members = (0..<count).map { index in
            Member(name: "m\(index)", clientPort: ports[2 * index], peerPort: ports[2 * index + 1],
                   dataDirectory: directory.appendingPathComponent("m\(index).data"),
                   logFile: directory.appendingPathComponent("m\(index).log"))
        }
        self.processes = Array(repeating: nil, count: count)
    }

    /// `count` ports that were free a moment ago, no two the same: the OS may hand a port it
    /// just gave out again once the probing socket is closed, and two members on one port would
    /// fail in a way that looks like a cluster bug.
    private static func distinctFreePorts(_ count: Int) throws -> [Int] {
        var ports: [Int] = []
        var attempts = 0
        while ports.count < count {
            attempts += 1
            guard attempts < count * 20 else { throw TestKitError("could not find \(count) distinct free ports") }
            let port = try Loopback.freePort()
            if !ports.contains(port) { ports.append(port) }
        }
        return ports
    }

    // MARK: - Addresses

    /// Each member's client URL, `http://127.0.0.1:PORT` (`https://` with TLS), in member order.
    public var clientURLs: [String] { members.map { clientURL($0) } }

    /// `127.0.0.1:P1,127.0.0.1:P2,...`, in member order: the host part of `etcd://` and
    /// `etcds://` state locations.
    public var endpoints: String { members.map { "127.0.0.1:\($0.clientPort)" }.joined(separator: ",") }

    /// How many members the cluster was started with (running or not).
    public var memberCount: Int { members.count }

    private var scheme: String { serverTLS == nil ? "http" : "https" }
    private func clientURL(_ member: Member) -> String { "\(scheme)://127.0.0.1:\(member.clientPort)" }
    private func peerURL(_ member: Member) -> String { "http://127.0.0.1:\(member.peerPort)" }

    // MARK: - Members

    /// The PID of the member's process while it runs; nil while it is down (a PID of an exited
    /// process may already name another test's server).
    public func pid(of member: Int) -> Int32? {
        lock.withLock { processes[member].flatMap { $0.isRunning ? $0.pid : nil } }
    }

    public func isRunning(_ member: Int) -> Bool {
        lock.withLock { processes[member]?.isRunning ?? false }
    }

    /// SIGKILL, as a crash: no leadership handed over, nothing flushed beyond what etcd had
    /// fsynced. Returns once the process is gone, blocking the caller meanwhile: a SIGKILLed
    /// process is reaped within milliseconds, and the tests call this between awaits where a
    /// non-async form reads better. A no-op for a member that is down.
    public func kill(_ member: Int) {
        guard let process = lock.withLock({ () -> ManagedProcess? in
            defer { processes[member] = nil }
            return processes[member]
        }) else { return }
        process.signal(SIGKILL)
        process.waitForExit(timeout: 10)
        process.stopInBackground()  // marks it stopped; there is nothing left to signal
    }

    /// SIGTERM, a clean shutdown: a leader hands its leadership over first (quick while the
    /// others run). Returns once the process has exited. A no-op for a member that is down.
    public func stopMember(_ member: Int) async {
        guard let process = lock.withLock({ () -> ManagedProcess? in
            defer { processes[member] = nil }
            return processes[member]
        }) else { return }
        await process.stop()
    }

    /// Starts a member that was killed or stopped, with its name, data directory and ports, and
    /// `--initial-cluster-state existing`; returns once it listens for clients. It has caught up
    /// with the others only once it answers a linearizable read (`waitForQuorum`), about 1.3 s
    /// after two members came back here.
    public func startAgain(_ member: Int) async throws {
        guard !isRunning(member) else { throw TestKitError("etcd \(members[member].name) is running; stop or kill it first") }
        let process = try launch(member, state: "existing")
        try await Loopback.waitForPort(members[member].clientPort, of: process, timeout: 30)
    }

    /// Returns once a linearizable read through some running member succeeds: there is a
    /// leader and a quorum behind it. Throws at `timeout` with each member's log tail.
    public func waitForQuorum(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        var lastError = ""
        repeat {
            for index in members.indices where isRunning(index) {
                do {
                    try await linearizableRead(through: index)
                    return
                } catch {
                    lastError = "\(error)"
                }
                if ContinuousClock.now >= deadline { break }
            }
            await Wait.pause(.milliseconds(50))
        } while ContinuousClock.now < deadline
        throw TestKitError("etcd: no quorum within \(timeout) (last: \(lastError))\n\(logTails())")
    }

    /// The last lines of every member's log, for failure messages.
    public func logTails(lines: Int = 10) -> String {
        members.map { member in
            let text = (try? String(contentsOf: member.logFile, encoding: .utf8)) ?? ""
            let tail = text.split(separator: "\n").suffix(lines).joined(separator: "\n")
            return "--- \(member.name) (\(member.logFile.path)):\n\(tail)"
        }.joined(separator: "\n")
    }

    // MARK: - etcdctl

    /// Runs etcdctl (v3 API) against every member's endpoint, or only those of `through`, with
    /// the client certificate when the cluster has TLS, and returns its standard output; throws
    /// with its standard error when it fails. `commandTimeout` bounds each request: without
    /// quorum a write or a linearizable read does not fail fast, it waits for the whole timeout.
    ///
    /// `through` rather than an `--endpoints` in `arguments`: etcdctl's `--endpoints` is a list
    /// flag, and a second one adds to the kit's list instead of replacing it.
    public func etcdctl(_ arguments: [String], through members: [Int]? = nil,
                        commandTimeout: Duration = .seconds(5)) async throws -> String {
        let endpoints = members.map { $0.map { clientURL(self.members[$0]) } } ?? clientURLs
        return try await runEtcdctl(endpoints: endpoints, commandTimeout: commandTimeout, arguments)
    }

    /// etcdctl against some endpoints, with the TLS flags when needed.
    private func runEtcdctl(endpoints: [String], commandTimeout: Duration, _ arguments: [String]) async throws -> String {
        var flags = ["--endpoints", endpoints.joined(separator: ","),
                     "--dial-timeout", Self.goDuration(min(commandTimeout, .seconds(2))),
                     "--command-timeout", Self.goDuration(commandTimeout)]
        if let tlsFiles {
            flags += ["--cacert", tlsFiles.caFile.path, "--cert", tlsFiles.clientCertificate.path,
                      "--key", tlsFiles.clientKey.path]
        }
        let (executable, command) = (etcdctlPath, flags + arguments)
        let result = try await OwnThread.run("etcdctl") { try Self.runBlocking(executable, command) }
        guard result.status == 0 else {
            throw TestKitError("etcdctl \(arguments.joined(separator: " ")) failed (\(result.status)): "
                               + result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return result.stdout
    }

    /// `1500ms`: etcdctl reads Go durations.
    private static func goDuration(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        return "\(seconds * 1000 + attoseconds / 1_000_000_000_000_000)ms"
    }

    /// Runs etcdctl to its end on the calling thread (a thread of its own: `OwnThread`), with
    /// stdout and stderr apart: a test compares stdout, a failure shows stderr. stderr is read on
    /// a second thread so that neither pipe can fill up while the other is read.
    private static func runBlocking(_ executable: String, _ arguments: [String]) throws
        -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        // ETCDCTL_API=3 (3.4's default, said anyway); any other ETCDCTL_* from the caller's
        // environment goes: etcdctl refuses an environment variable that a flag shadows.
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ETCDCTL_") }
        environment["ETCDCTL_API"] = "3"
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let errData = ReadToEnd()
        let errReader = Thread { errData.read(err.fileHandleForReading) }
        errReader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        errData.wait()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self),
                String(decoding: errData.data, as: UTF8.self))
    }

    // MARK: - Stopping

    /// Stops every member, one after the other, and deletes their data directories (the logs
    /// stay); returns once all have exited. One at a time, because a leader that gets SIGTERM
    /// while its followers are stopping too spends etcd's request timeout (5 s + 2 election
    /// timeouts, 6 s here) trying to hand its leadership to them before it exits; stopped in
    /// turn, the leader either hands over at once or finds no peer to hand to, and three members
    /// stop in about 0.15 s.
    public func stop() async {
        let running = takeAll()
        for process in running { await process.stop() }
        removeDataDirectories()
    }

    /// For a `defer` or `deinit`: SIGTERM to every member now, SIGKILL after 1 s to any that has
    /// not exited (the leader, busy handing its leadership to members that are stopping too: see
    /// `stop()`; the data is thrown away, so a kill loses nothing), then the data directories go,
    /// from a thread of its own. Returns at once.
    public func stopInBackground() {
        let running = takeAll()
        Self.stopInBackground(running, dataDirectories: members.map(\.dataDirectory))
    }

    private func takeAll() -> [ManagedProcess] {
        lock.withLock {
            defer { processes = Array(repeating: nil, count: processes.count) }
            return processes.compactMap { $0 }
        }
    }

    private func removeDataDirectories() {
        for member in members { try? FileManager.default.removeItem(at: member.dataDirectory) }
    }

    /// Each member's write-ahead log preallocates 64 MB: a test run that left every cluster's
    /// data behind would fill the temporary folder. Hence the deletion once the processes exit.
    private static func stopInBackground(_ running: [ManagedProcess], dataDirectories: [URL]) {
        for process in running { process.stopInBackground(grace: 1) }
        Thread.detachNewThread {
            for process in running { process.waitForExit(timeout: 10) }
            for directory in dataDirectories { try? FileManager.default.removeItem(at: directory) }
        }
    }

    deinit {
        let running = processes.compactMap { $0 }
        if !running.isEmpty {
            Self.stopInBackground(running, dataDirectories: members.map(\.dataDirectory))
        }
    }

    // MARK: - Launching and readiness

    /// Starts one member's etcd with `--initial-cluster-state` `state` (`new` at the start,
    /// `existing` for a restart), without waiting for it.
    @discardableResult
    private func launch(_ index: Int, state: String) throws -> ManagedProcess {
        let member = members[index]
        var arguments = [
            "--name", member.name,
            "--data-dir", member.dataDirectory.path,
            "--initial-cluster", members.map { "\($0.name)=\(peerURL($0))" }.joined(separator: ","),
            "--initial-cluster-state", state,
            "--initial-cluster-token", token,
            "--listen-client-urls", clientURL(member),
            "--advertise-client-urls", clientURL(member),
            "--listen-peer-urls", peerURL(member),
            "--initial-advertise-peer-urls", peerURL(member),
            // Loopback round trips are microseconds, so etcd's defaults (100 ms heartbeat,
            // 1000 ms election timeout, sized for real networks) only make the start and each
            // failover slower. 500 ms rather than less: on a 2-core machine running the tests in
            // parallel a member can go unscheduled for a while, and a tighter timeout turns that
            // into spurious elections. The election timeout must stay >= 5 heartbeats.
            "--heartbeat-interval", "50",
            "--election-timeout", "500",
            // 3.4's default logger (capnslog) is deprecated and logs every info line; zap at
            // warn keeps the log to what goes wrong (and the peer connection changes, which 3.4
            // logs as warnings). The log goes to the member's file through stderr.
            "--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn",
        ]
        if let serverTLS {
            arguments += ["--cert-file", serverTLS.certificate.path, "--key-file", serverTLS.key.path,
                          "--client-cert-auth", "--trusted-ca-file", serverTLS.trustedCA.path]
        }
        let process = try ManagedProcess(name: "etcd \(member.name)", executable: etcdPath, arguments: arguments,
                                         logFile: member.logFile)
        lock.withLock { processes[index] = process }
        return process
    }

    /// A linearizable read of one key through one member: it succeeds only when that member
    /// knows a leader that a quorum follows. A short timeout, as the callers poll.
    private func linearizableRead(through index: Int) async throws {
        _ = try await runEtcdctl(endpoints: [clientURL(members[index])], commandTimeout: .seconds(1),
                                 ["get", "--consistency=l", "/switchover-testkit/probe"])
    }

    /// Polls a member's peer URL until it answers `GET /version` (its HTTP server serves the
    /// peer API); throws with its log when its process exits or the deadline passes.
    private func waitUntilServingPeers(_ index: Int, until deadline: ContinuousClock.Instant) async throws {
        let member = members[index]
        let port = member.peerPort
        while true {
            guard let process = lock.withLock({ processes[index] }), process.isRunning else {
                let tail = lock.withLock { processes[index] }?.logTail() ?? ""
                throw TestKitError("etcd \(member.name) exited before it served its peers:\n\(tail)")
            }
            if Loopback.isListening(port: port),
               await OwnThread.run("etcd peer probe", { Self.answersVersion(port: port) }) {
                return
            }
            guard ContinuousClock.now < deadline else {
                throw TestKitError("etcd \(member.name) did not serve its peers on \(peerURL(member)) in time\n"
                                   + process.logTail())
            }
            await Wait.pause(.milliseconds(10))
        }
    }

    /// True when `GET /version` on 127.0.0.1:`port` gets a `200` status line within 1 s. Reads
    /// only the status line: `Loopback.httpExchange` reads until the server closes, and etcd
    /// 3.4's peer server answers at once but closes the connection only 5 s later, `Connection:
    /// close` notwithstanding. Blocks: call it on a thread of its own.
    private static func answersVersion(port: Int) -> Bool {
        guard let fd = try? Loopback.connectBlocking(port: port, receiveTimeoutSeconds: 1) else { return false }
        defer { close(fd) }
        let request = Array("GET /version HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n".utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { return false }
        var answer = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 512)
        while !answer.contains(UInt8(ascii: "\n")) {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            answer += buffer[0..<n]
        }
        return String(decoding: answer, as: UTF8.self).hasPrefix("HTTP/1.1 200")
    }

    /// Polls `linearizableRead` through one member until it succeeds; throws with the member's
    /// log when its process exits or the deadline passes.
    private func waitForLinearizableRead(through index: Int, until deadline: ContinuousClock.Instant) async throws {
        let member = members[index]
        var lastError = ""
        while true {
            guard let process = lock.withLock({ processes[index] }), process.isRunning else {
                let tail = lock.withLock { processes[index] }?.logTail() ?? ""
                throw TestKitError("etcd \(member.name) exited before it answered a read:\n\(tail)")
            }
            if Loopback.isListening(port: member.clientPort) {
                do {
                    try await linearizableRead(through: index)
                    return
                } catch {
                    lastError = "\(error)"
                }
            }
            guard ContinuousClock.now < deadline else {
                throw TestKitError("etcd \(member.name) did not answer a linearizable read in time (last: \(lastError))\n"
                                   + logTails())
            }
            await Wait.pause(.milliseconds(50))
        }
    }
}

/// A pipe read to its end on a thread of its own. `@unchecked Sendable`: `data` is written by
/// that thread only, before it signals `done`, and read only after `wait()`.
private final class ReadToEnd: @unchecked Sendable {
    private(set) var data = Data()
    private let done = DispatchSemaphore(value: 0)

    func read(_ handle: FileHandle) {
        data = handle.readDataToEndOfFile()
        done.signal()
    }

    func wait() { done.wait() }
}
