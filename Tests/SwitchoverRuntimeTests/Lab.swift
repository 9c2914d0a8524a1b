import Foundation
import Logging
import SwitchoverCore
import SwitchoverStore
import SwitchoverRuntime
import SwitchoverTestKit
#if canImport(Glibc)
import Glibc
#endif

/// What every loopback lab of the runtime tests shares, whichever load balancer is in front:
/// nginx backends blue-1 and green-1 (green fails on demand), shared-root test PKI so trust
/// holds both ways, the configuration folders written for this world, the journal, `hey` load
/// through the front, and the BUILT `switchover` binary. `CutoverLab` puts a real HAProxy in
/// front, `EnvoyLab` a real Envoy; each writes only its own `spec.loadBalancer` section and the
/// names its load balancer gives blue and green.
///
/// Subclasses stop their own processes in `stopAll()` (calling this one's) and in `deinit`.
///
/// Every wait here suspends (the test kit's `Wait` and `OwnThread`): suites run in parallel on the
/// cooperative pool, and a lab that blocked a thread while it polled the journal or waited for a
/// command would hold up every other test's coordinator and stopwatch.
class Lab: SwitchoverLab, @unchecked Sendable {
    struct PolicyOptions {
        var steps: [Int] = [10, 25, 50, 100]
        var bake = "1500ms"
        var interval = "500ms"
        var failureThreshold = 2
        var pauseAfterErrors = 2
        var minRequests = 5
        var hardSignal: (ratio: Double, minRequests: Int)? = nil
        /// A Prometheus gate on the load balancer's exporter (HAProxy only).
        var prometheusGate = false
        var holdFor = "1s"
        var dnsTTL = "0s"
        var drainTimeout = "1m"
        var forceAfter: String? = nil
        /// Extra HAProxy backend lines (drain tests pin requests with `use-server`; HAProxy only).
        var backendLines: [String] = []
        /// The path of blue's `health` URL (`/slowhealth` answers in about 2.5 s).
        var blueHealthPath = "/healthz"
        /// Lines appended to the policy's `spec` (webhooks, notifications).
        var extraSpec: [String] = []
    }

    let folder: URL
    let blue: NginxBackend
    let green: NginxBackend
    /// The load balancer's frontend, where clients send requests: `http://127.0.0.1:port/`.
    let frontURL: String
    /// `--state`: the lab's SQLite file, or an `etcd://` URL a lab sets before it starts anything.
    var statePath: String
    /// How the lab itself reads an `etcds://` journal (its client certificate).
    var etcdOptions = EtcdOptions()
    var load: ManagedProcess?
    let logger = Logger(label: "test.lab")

    /// A new folder named after `name` with blue's and green's nginx running in it: what a
    /// subclass starts its load balancer in front of, before `init(backends:frontURL:)`.
    static func startBackends(_ name: String) async throws -> (folder: URL, blue: NginxBackend, green: NginxBackend) {
        let folder = try TemporaryDirectory.make(name)
        async let blue = NginxBackend.start(name: "blue-1", in: folder)
        async let green = NginxBackend.start(name: "green-1", in: folder)
        return (folder, try await blue, try await green)
    }

    init(backends: (folder: URL, blue: NginxBackend, green: NginxBackend), frontURL: String) {
        folder = backends.folder
        blue = backends.blue
        green = backends.green
        self.frontURL = frontURL
        statePath = folder.appendingPathComponent("state/state.db").path
    }

    deinit {
        // Failures quote the logs they need (logTail) before this point.
        try? FileManager.default.removeItem(at: folder)
    }

    /// Stops every process of the lab without waiting for them to exit (SIGTERM now, SIGKILL
    /// later from a thread of their own): for `defer` and `deinit`, which cannot await.
    func stopAll() {
        load?.stopInBackground(grace: 1)
        blue.stopInBackground()
        green.stopInBackground()
    }

    // MARK: - Configuration

    /// Cluster files for blue and green and policy `test` (the test kit's `ConfigDocuments`).
    /// `loadBalancer`: the lines of `spec.loadBalancer`; `servers`: blue's and green's servers as
    /// the load balancer names them; `extraGates`: gate items after `green-errors`.
    func writeConfiguration(_ options: PolicyOptions, loadBalancer: [String], servers: [String: [String]],
                            extraGates: [String] = []) async throws {
        let trust = try await ConfigDocuments.sharedTrust(in: folder, clusters: ["blue", "green"])
        var clusters: [ClusterDocument] = []
        for (name, backend, version, health) in [("blue", blue, "1.27.4", options.blueHealthPath),
                                                 ("green", green, "1.28.0", "/healthz")] {
            guard let names = servers[name], let material = trust[name] else {
                throw TestKitError("the lab names no servers for \(name)")
            }
            clusters.append(ClusterDocument(name: name, istioVersion: version, rootCerts: material.roots.path,
                                            certChain: material.chain.path, servers: names,
                                            health: "http://\(backend.address)\(health)"))
        }
        var policy = PolicyDocument(
            name: "test", loadBalancer: loadBalancer, steps: options.steps, bake: options.bake, interval: options.interval,
            sampling: "250ms", failureThreshold: options.failureThreshold, pauseAfterErrors: options.pauseAfterErrors,
            gates: ["name: green-errors\nloadBalancer: {cluster: green, max5xxRatio: 0.05, minRequests: \(options.minRequests)}"]
                + extraGates,
            hardSignal: options.hardSignal.map { ($0.ratio, $0.minRequests) },
            drain: PolicyDocument.drain(holdFor: options.holdFor, dnsTTL: options.dnsTTL, timeout: options.drainTimeout,
                                        forceAfter: options.forceAfter))
        policy.extraSpec = options.extraSpec
        try ConfigDocuments.write(clusters: clusters, policies: [policy], in: folder)
    }

    // MARK: - Processes

    /// `hey` against the front: `rate` requests per second per worker, `workers` workers, for
    /// `seconds` (bounded; it stops by itself).
    func startLoad(seconds: Int = 30, rate: Int = 50, workers: Int = 4) throws {
        load = try Load.startHey(frontURL, seconds: seconds, rate: rate, workers: workers,
                                 logFile: folder.appendingPathComponent("hey-\(UUID().uuidString.prefix(4)).log"))
    }

    /// hey's report of the load `startLoad` began, once it has run its course.
    func loadReport(timeout: TimeInterval = 90) async throws -> HeyReport {
        guard let load else { throw TestKitError("no load was started") }
        guard await load.waitForExit(timeout: timeout) else { throw TestKitError("hey still running after \(timeout)s") }
        return try await HeyReport.finish(load)
    }

    /// `switchover run blue green --policy test --until UNTIL` as a process of its own. The
    /// lab's policy has a `drain` section, so without `--until` the run goes on to drained;
    /// the cutover tests stop at promoted.
    func startCoordinator(until: String? = "promoted", environment extra: [String: String] = [:],
                          extraArguments: [String] = []) throws -> ManagedProcess {
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in extra { environment[key] = value }
        return try ManagedProcess(name: "switchover run", executable: try switchoverExecutable().path,
                                  arguments: ["run", "blue", "green", "--policy", "test"] + (until.map { ["--until", $0] } ?? [])
                                    + extraArguments + globalArguments,
                                  environment: environment,
                                  logFile: folder.appendingPathComponent("run-\(UUID().uuidString.prefix(6)).log"))
    }

    // MARK: - Reading the journal

    func journal() throws -> any JournalStore { try StateLocation(parsing: statePath, etcd: etcdOptions).journal() }

    /// The latest run's journaled state.
    func state() throws -> CutoverState? {
        guard statePath.hasPrefix("etcd") || FileManager.default.fileExists(atPath: statePath) else { return nil }
        let journal = try journal()
        guard let run = try journal.latestRun() else { return nil }
        return try journal.loadCutoverState(run: run.id)
    }

    /// The latest run's engine events of `kind`, with the time each was journaled.
    func engineEvents(_ kind: EngineEvent.Kind) throws -> [(at: Instant, event: EngineEvent)] {
        try events().filter { $0.kind == kind.rawValue }.compactMap { row in
            (try? JSONDecoder().decode(EngineEvent.self, from: Data(row.detail.utf8))).map { (row.at, $0) }
        }
    }

    /// Polls the journaled state every 50 ms until `condition` holds, or fails after `timeout`
    /// seconds; suspends between polls.
    @discardableResult
    func waitFor(_ what: String, timeout: TimeInterval = 30, process: ManagedProcess? = nil,
                 _ condition: (CutoverState) -> Bool) async throws -> CutoverState {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while ContinuousClock.now < deadline {
            if let state = try? state(), condition(state) { return state }
            if let process, !process.isRunning {
                throw TestKitError("coordinator exited (\(process.exitStatus ?? -1)) before \(what):\n\(process.logTail(lines: 40))")
            }
            await Wait.pause(.milliseconds(50))
        }
        throw TestKitError("timed out waiting for \(what); state: \(String(describing: try? state()))\n\(process?.logTail(lines: 40) ?? "")")
    }

}

/// What every lab of these tests does the same way, from its folder and journal: the global
/// options naming them, the CLI through them, `status --output json`, waiting for a coordinator
/// to exit, and the latest run's journal events.
protocol SwitchoverLab: AnyObject {
    var folder: URL { get }
    var statePath: String { get }
}

extension SwitchoverLab {
    var globalArguments: [String] {
        ["--clusters", folder.appendingPathComponent("clusters").path,
         "--policies", folder.appendingPathComponent("policies").path,
         "--state", statePath]
    }

    func cli(_ arguments: [String]) async throws -> (exitCode: Int32, stdout: String, stderr: String) {
        try await runSwitchover(arguments + globalArguments, cwd: folder)
    }

    func statusJSON() async throws -> [String: Any] {
        let result = try await cli(["status", "--output", "json"])
        guard result.exitCode == 0,
              let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
            throw TestKitError("status failed (\(result.exitCode)): \(result.stdout) \(result.stderr)")
        }
        return object
    }

    func waitForExit(_ process: ManagedProcess, timeout: TimeInterval = 90) async throws -> Int32 {
        guard await process.waitForExit(timeout: timeout), let status = process.exitStatus else {
            throw TestKitError("coordinator still running after \(timeout)s:\n\(process.logTail(lines: 40))")
        }
        return status
    }

    /// The latest run's journal events (kind and JSON detail as journaled); none before the
    /// journal exists.
    func events() throws -> [JournalEvent] {
        guard let journal = try StateLocation(parsing: statePath, etcd: (self as? Lab)?.etcdOptions ?? EtcdOptions()).existingJournal() else { return [] }
        guard let run = try journal.latestRun() else { return [] }
        return try journal.events(run: run.id, afterSequence: 0, limit: 100_000)
    }
}

/// Detaches the mount at `path` (`umount -l`: lazily, it goes once nothing uses it), for a test's
/// `defer`: the umount2(2) system call returns at once, where running `/bin/umount` would mean
/// waiting for a child process in a block that cannot await.
func lazyUnmount(_ path: String) {
    _ = umount2(path, Int32(MNT_DETACH))
}
