import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real etcd cluster (Debian's `etcd` 3.4, `etcd-server`) of `members` members on free loopback
/// ports, each with its own data directory, started with `--initial-cluster` and stopped by PID.
/// Members can be killed and started again (same name, ports and data: `--initial-cluster-state
/// existing`), to lose a member or the quorum and get them back.
///
/// Raft timing is shortened for tests (`--heartbeat-interval 50 --election-timeout 500`): a
/// leader lost to a kill is replaced within about a second instead of etcd's default several.
///
/// With `tls`, clients must come with a certificate the test PKI made (`--client-cert-auth`);
/// members talk to each other in plain HTTP on loopback, which is not what is under test.
///
/// `@unchecked Sendable`: `processes` is guarded by `lock`; everything else is immutable.
public final class EtcdCluster: @unchecked Sendable {
    public struct TLSFiles: Sendable {
        public let caFile: URL
        public let clientCertificate: URL
        public let clientKey: URL
    }

    struct Member {
        let name: String
        let clientPort: Int
        let peerPort: Int
        let dataDirectory: URL
    }

    public let directory: URL
    public let tlsFiles: TLSFiles?
    let members: [Member]
    let serverTLS: (certificate: URL, key: URL)?
    let etcd: String
    let etcdctlPath: String
    private let lock = NSLock()
    private var processes: [Int: ManagedProcess] = [:]

    /// Starts the members and returns once a linearizable read succeeds (the cluster has a leader).
    public static func start(members: Int = 3, tls: Bool = false, in parent: URL? = nil) async throws -> EtcdCluster {
        let cluster = try await EtcdCluster(members: members, tls: tls, in: parent)
        do {
            for index in 0..<members { try cluster.launch(index, existing: false) }
            try await cluster.waitForQuorum(timeout: .seconds(30))
        } catch {
            cluster.stopInBackground()
            throw error
        }
        return cluster
    }

    private init(members count: Int, tls: Bool, in parent: URL?) async throws {
        etcd = try Tools.require("etcd")
        etcdctlPath = try Tools.require("etcdctl")
        let folder = try parent.map { p -> URL in
            let d = p.appendingPathComponent("etcd-\(UUID().uuidString.prefix(6))")
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            return d
        } ?? TemporaryDirectory.make("etcd")
        directory = folder
        members = try (0..<count).map { index in
            Member(name: "m\(index)", clientPort: try Loopback.freePort(), peerPort: try Loopback.freePort(),
                   dataDirectory: folder.appendingPathComponent("m\(index).data"))
        }
        if tls {
            let pki = try TestPKI(directory: folder.appendingPathComponent("pki"))
            let root = try await pki.makeRoot(name: "etcd-ca")
            // Server and client: etcd's own JSON gateway dials its gRPC port with this certificate,
            // and `--client-cert-auth` refuses it without clientAuth ("failed to write client preface").
            let server = try await pki.makeLeaf(name: "etcd-server", sans: ["IP:127.0.0.1", "DNS:localhost"], issuer: root,
                                                usage: .serverAndClient)
            let client = try await pki.makeLeaf(name: "etcd-client", sans: ["DNS:switchover"], issuer: root, usage: .client)
            tlsFiles = TLSFiles(caFile: root.certificateFile, clientCertificate: client.certificateFile, clientKey: client.keyFile)
            serverTLS = (server.certificateFile, server.keyFile)
        } else {
            tlsFiles = nil
            serverTLS = nil
        }
    }

    /// `http(s)://127.0.0.1:PORT` of each member, in member order.
    public var clientURLs: [String] { members.map { "\(tlsFiles == nil ? "http" : "https")://127.0.0.1:\($0.clientPort)" } }
    /// `127.0.0.1:P1,127.0.0.1:P2,...`: the endpoints of an `etcd://` URL.
    public var endpoints: String { members.map { "127.0.0.1:\($0.clientPort)" }.joined(separator: ",") }

    private func launch(_ index: Int, existing: Bool) throws {
        let member = members[index]
        let initial = members.map { "\($0.name)=http://127.0.0.1:\($0.peerPort)" }.joined(separator: ",")
        let scheme = tlsFiles == nil ? "http" : "https"
        var arguments = [
            "--name", member.name, "--data-dir", member.dataDirectory.path,
            "--initial-cluster", initial, "--initial-cluster-state", existing ? "existing" : "new",
            "--initial-cluster-token", "switchover-\(directory.lastPathComponent)",
            "--listen-client-urls", "\(scheme)://127.0.0.1:\(member.clientPort)",
            "--advertise-client-urls", "\(scheme)://127.0.0.1:\(member.clientPort)",
            "--listen-peer-urls", "http://127.0.0.1:\(member.peerPort)",
            "--initial-advertise-peer-urls", "http://127.0.0.1:\(member.peerPort)",
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn",
        ]
        if let serverTLS, let tlsFiles {
            arguments += ["--cert-file", serverTLS.certificate.path, "--key-file", serverTLS.key.path,
                          "--client-cert-auth", "--trusted-ca-file", tlsFiles.caFile.path]
        }
        let process = try ManagedProcess(name: "etcd \(member.name)", executable: etcd, arguments: arguments,
                                         logFile: directory.appendingPathComponent("\(member.name)-\(UUID().uuidString.prefix(4)).log"))
        lock.withLock { processes[index] = process }
    }

    public func pid(of member: Int) -> Int32? { lock.withLock { processes[member]?.pid } }

    public func isRunning(_ member: Int) -> Bool { lock.withLock { processes[member]?.isRunning ?? false } }

    /// SIGKILL to one member; returns once it is gone.
    public func kill(_ member: Int) {
        guard let process = lock.withLock({ processes.removeValue(forKey: member) }) else { return }
        process.signal(SIGKILL)
        _ = waitpidGone(process)
    }

    private func waitpidGone(_ process: ManagedProcess) -> Bool {
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        return !process.isRunning
    }

    /// Stops one member (SIGTERM, then SIGKILL); returns once it has exited.
    public func stopMember(_ member: Int) async {
        guard let process = lock.withLock({ processes.removeValue(forKey: member) }) else { return }
        await process.stop()
    }

    /// Starts a killed or stopped member again (same name, data, ports) and returns once it listens.
    public func startAgain(_ member: Int) async throws {
        try launch(member, existing: true)
        guard let process = lock.withLock({ processes[member] }) else { return }
        try await Loopback.waitForPort(members[member].clientPort, of: process, timeout: 30)
    }

    /// Waits until a linearizable read through any member succeeds.
    public func waitForQuorum(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        var last = ""
        while ContinuousClock.now < deadline {
            do {
                _ = try await etcdctl(["get", "--consistency=l", "/switchover-readiness"], commandTimeout: "1s")
                return
            } catch {
                last = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestKitError("etcd had no quorum within \(timeout): \(last)\n" + logTails())
    }

    /// The last lines of every member's log.
    public func logTails() -> String {
        lock.withLock { processes.sorted { $0.key < $1.key }.map { "m\($0.key): \($0.value.logTail(lines: 10))" }.joined(separator: "\n") }
    }

    /// Runs `etcdctl` (API v3) against every member (with the client certificate under TLS) and
    /// returns its stdout; throws with its output when it fails.
    public func etcdctl(_ arguments: [String], commandTimeout: String = "3s") async throws -> String {
        var flags = ["--endpoints", clientURLs.joined(separator: ","), "--command-timeout", commandTimeout, "--dial-timeout", "1s"]
        if let tlsFiles {
            flags += ["--cacert", tlsFiles.caFile.path, "--cert", tlsFiles.clientCertificate.path, "--key", tlsFiles.clientKey.path]
        }
        let result = try await Command.run("/usr/bin/env", ["ETCDCTL_API=3", etcdctlPath] + flags + arguments)
        guard result.status == 0 else { throw TestKitError("etcdctl \(arguments.joined(separator: " ")) failed (\(result.status)): \(result.output)") }
        return result.output
    }

    /// Stops every member; returns once they have exited.
    public func stop() async {
        let all = lock.withLock { () -> [ManagedProcess] in
            defer { processes = [:] }
            return Array(processes.values)
        }
        for process in all { await process.stop() }
        try? FileManager.default.removeItem(at: directory)
    }

    /// For a `defer` or `deinit`: SIGTERM now, SIGKILL from a thread of its own later.
    public func stopInBackground() {
        let all = lock.withLock { () -> [ManagedProcess] in
            defer { processes = [:] }
            return Array(processes.values)
        }
        for process in all { process.stopInBackground() }
    }

    deinit { stopInBackground() }
}
