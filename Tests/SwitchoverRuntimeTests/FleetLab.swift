import Foundation
import SwitchoverStore
import SwitchoverTestKit
#if canImport(Glibc)
import Glibc
#endif

/// A whole-cluster switchover on loopback (issue 14): two real HAProxy instances, `lb-a` and
/// `lb-b`, in front of the SAME nginx backends, for three services, `cart`, `checkout` and
/// `search`. Each service has one blue and one green nginx (`blue-cart-1`, `green-cart-1`, ...;
/// any green fails with 503 on demand) and one backend on each instance (`be_cart`,
/// `be_checkout`, `be_search`: blue weight 1, green 0 in the config, so a restarted or reloaded
/// instance sends everything to blue). Each instance routes by path prefix: `/be_cart/...` goes
/// to `be_cart` (`HAProxyServer.start(backends:...)`); its runtime API is on TCP for the policy
/// (`tcp://127.0.0.1:PORT`) and on a UNIX socket for the lab's own reads.
///
/// The lab writes `clusters/blue.yaml`, `clusters/green.yaml` (`spec.loadBalancer.services`) and
/// `policies/fleet.yaml` (`instances`, `services`, optional `waves`) in DESIGN.md section 3's
/// fleet form, and drives only the BUILT `switchover` binary: phases come from `status --output
/// json`, weights from each instance's runtime API (`show servers state`), never from
/// Switchover's own drivers. Only the journal's raw events (kind and JSON text) are read through
/// the store, for what the journal says.
///
/// Every wait suspends (`Wait`, `OwnThread`), as `Lab`'s comment explains; `FleetWatch` polls
/// on a thread of its own.
final class FleetLab: SwitchoverLab, @unchecked Sendable {
    struct Options {
        var steps: [Int] = [50, 100]
        var bake = "1s"
        var interval = "500ms"
        var failureThreshold = 2
        var pauseAfterErrors = 2
        var minRequests = 5
        var hardSignal: (ratio: Double, minRequests: Int)? = nil
        var holdFor = "1s"
        var drainTimeout = "1m"
        /// `spec.waves`; nil: no `waves` key (every service in one wave).
        var waves: [[String]]? = nil
        /// Backends left out of lb-b's config (a backend that does not exist on one instance).
        var missingOnLbB: Set<String> = []
    }

    static let services = ["cart", "checkout", "search"]
    static let instanceNames = ["lb-a", "lb-b"]
    static func backend(_ service: String) -> String { "be_\(service)" }
    /// `blue-cart-1`, `green-search-1`, ...
    static func server(_ cluster: String, _ service: String) -> String { "\(cluster)-\(service)-1" }

    let folder: URL
    /// The nginx of each service, by service name.
    let blue: [String: NginxBackend]
    let green: [String: NginxBackend]
    /// `lb-a` and `lb-b`, by name.
    let instances: [String: HAProxyServer]
    let statePath: String
    let options: Options
    /// How long `init` took: six nginx, two HAProxy, the PKI and the files.
    private(set) var startup: Duration = .zero
    private let lock = NSLock()
    private var loads: [(instance: String, service: String, process: ManagedProcess)] = []

    var lbA: HAProxyServer { instances["lb-a"]! }
    var lbB: HAProxyServer { instances["lb-b"]! }

    init(_ name: String, options: Options = Options()) async throws {
        let started = ContinuousClock.now
        let folder = try TemporaryDirectory.make(name)
        self.folder = folder
        self.options = options
        statePath = folder.appendingPathComponent("state/state.db").path
        // Six nginx at once, each on a thread of its own while it waits for its port.
        let backends = try await withThrowingTaskGroup(of: (String, String, NginxBackend).self) { group in
            for service in Self.services {
                for cluster in ["blue", "green"] {
                    group.addTask { (cluster, service, try await NginxBackend.start(name: Self.server(cluster, service), in: folder)) }
                }
            }
            return try await group.reduce(into: [String: [String: NginxBackend]]()) { $0[$1.0, default: [:]][$1.1] = $1.2 }
        }
        blue = backends["blue"] ?? [:]
        green = backends["green"] ?? [:]
        let haproxyBackends = Self.services.map { service in
            HAProxyServer.Backend(name: Self.backend(service), servers: [
                .init(name: Self.server("blue", service), address: backends["blue"]![service]!.address, weight: 1),
                .init(name: Self.server("green", service), address: backends["green"]![service]!.address, weight: 0),
            ])
        }
        do {
            async let a = HAProxyServer.start(backends: haproxyBackends, name: "lb-a", tcpAdmin: true, in: folder)
            async let b = HAProxyServer.start(backends: haproxyBackends.filter { !options.missingOnLbB.contains($0.name) },
                                              name: "lb-b", tcpAdmin: true, in: folder)
            instances = ["lb-a": try await a, "lb-b": try await b]
        } catch {
            for backend in backends.values.flatMap(\.values) { backend.stopInBackground() }
            throw error
        }
        try await writeConfiguration()
        startup = ContinuousClock.now - started
    }

    deinit {
        stopAll()
        try? FileManager.default.removeItem(at: folder)
    }

    /// Stops every process of the lab without waiting (SIGTERM now, SIGKILL later from a thread
    /// of their own): for `defer` and `deinit`.
    func stopAll() {
        for load in lock.withLock({ loads }) { load.process.stopInBackground(grace: 1) }
        for instance in instances.values { instance.stopInBackground() }
        for backend in blue.values { backend.stopInBackground() }
        for backend in green.values { backend.stopInBackground() }
    }

    // MARK: - Configuration

    /// The `spec.loadBalancer` lines of the fleet policy: both instances on TCP, every service
    /// mapped to its backend.
    var loadBalancerLines: [String] {
        ["driver: haproxy",
         "haproxy:",
         "  instances:"]
            + Self.instanceNames.map { "    - {name: \($0), socket: \(instances[$0]!.tcpAdminAddress!)}" }
            + ["  services: {\(Self.services.map { "\($0): \(Self.backend($0))" }.joined(separator: ", "))}"]
    }

    var policyFile: URL { folder.appendingPathComponent("policies/fleet.yaml") }

    /// `clusters/blue.yaml`, `clusters/green.yaml` and `policies/fleet.yaml` (policy `fleet`),
    /// the rest as `Lab.writeConfiguration` writes it: shared-root PKI, each cluster's health on
    /// its cart server, gate `green-errors` (no `service`: it applies to each service), the drain
    /// section.
    func writeConfiguration() async throws {
        let trust = try await ConfigDocuments.sharedTrust(in: folder, clusters: ["blue", "green"])
        var clusters: [ClusterDocument] = []
        for (name, servers, version) in [("blue", blue, "1.27.4"), ("green", green, "1.28.0")] {
            guard let material = trust[name], let health = servers["cart"] else { throw TestKitError("no trust for \(name)") }
            clusters.append(ClusterDocument(name: name, istioVersion: version, rootCerts: material.roots.path, certChain: material.chain.path,
                                            services: Self.services.map { ($0, [Self.server(name, $0)]) },
                                            health: "http://\(health.address)/healthz"))
        }
        let policy = PolicyDocument(
            name: "fleet", loadBalancer: loadBalancerLines, steps: options.steps, bake: options.bake, interval: options.interval,
            sampling: "250ms", failureThreshold: options.failureThreshold, pauseAfterErrors: options.pauseAfterErrors,
            gates: ["name: green-errors\nloadBalancer: {cluster: green, max5xxRatio: 0.05, minRequests: \(options.minRequests)}"],
            hardSignal: options.hardSignal.map { ($0.ratio, $0.minRequests) },
            drain: PolicyDocument.drain(holdFor: options.holdFor, dnsTTL: "0s", timeout: options.drainTimeout), waves: options.waves)
        try ConfigDocuments.write(clusters: clusters, policies: [policy], in: folder)
    }

    /// Replaces `old` with `new` in the policy file, as a person editing it would.
    func editPolicy(_ old: String, _ new: String) throws {
        let text = try String(contentsOf: policyFile, encoding: .utf8)
        guard text.contains(old) else { throw TestKitError("the policy has no '\(old)':\n\(text)") }
        try text.replacingOccurrences(of: old, with: new).write(to: policyFile, atomically: true, encoding: .utf8)
    }

    // MARK: - Load

    /// `hey` through BOTH instances for ALL services: one hey per instance and service (six),
    /// each `rate` requests per second per worker with `workers` workers, for `seconds`.
    func startLoad(seconds: Int = 40, rate: Int = 15, workers: Int = 2) throws {
        for instance in Self.instanceNames {
            for service in Self.services {
                let url = instances[instance]!.url(for: Self.backend(service))
                let process = try Load.startHey(url, seconds: seconds, rate: rate, workers: workers,
                                                logFile: folder.appendingPathComponent("hey-\(instance)-\(service).log"))
                lock.withLock { loads.append((instance, service, process)) }
            }
        }
    }

    /// Stops every hey (SIGINT: each prints its report) and reads the reports, by instance and
    /// service.
    func loadReports() async throws -> [String: [String: HeyReport]] {
        var reports: [String: [String: HeyReport]] = [:]
        for load in lock.withLock({ loads }) {
            reports[load.instance, default: [:]][load.service] = try await HeyReport.finish(load.process)
        }
        return reports
    }

    // MARK: - The binary

    /// `switchover run blue green --policy fleet [--until UNTIL]` as a process of its own; the
    /// policy has a drain section, so without `--until` the run goes on to drained.
    func startCoordinator(until: String? = "promoted") throws -> ManagedProcess {
        try ManagedProcess(name: "switchover run", executable: try switchoverExecutable().path,
                           arguments: ["run", "blue", "green", "--policy", "fleet"] + (until.map { ["--until", $0] } ?? [])
                            + globalArguments,
                           logFile: folder.appendingPathComponent("run-\(UUID().uuidString.prefix(6)).log"))
    }

    /// Asks `status --output json` every 200 ms until `condition` holds; fails after `timeout`
    /// seconds, or when `process` (the coordinator) exits first. Returns the status that held.
    @discardableResult
    func waitForStatus(_ what: String, timeout: TimeInterval = 60, process: ManagedProcess? = nil,
                       _ condition: ([String: Any]) -> Bool) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + .seconds(timeout)
        var last: [String: Any] = [:]
        while ContinuousClock.now < deadline {
            if let status = try? await statusJSON() {
                last = status
                if condition(status) { return status }
            }
            if let process, !process.isRunning {
                throw TestKitError("coordinator exited (\(process.exitStatus ?? -1)) before \(what); status \(last):\n\(process.logTail(lines: 40))")
            }
            await Wait.pause(.milliseconds(200))
        }
        throw TestKitError("timed out waiting for \(what); status \(last)\n\(process?.logTail(lines: 40) ?? "")")
    }

    // MARK: - Reading the load balancers and the journal

    /// Every server of every backend on `instance`, from its runtime API.
    func serverStates(_ instance: String) async throws -> [String: [String: HAProxyServer.ServerState]] {
        try await instances[instance]!.serverStates()
    }

    /// `service`'s blue and green server on `instance`, as its runtime API reports them.
    func servers(_ instance: String, _ service: String) async throws -> (blue: HAProxyServer.ServerState, green: HAProxyServer.ServerState) {
        let states = try await serverStates(instance)
        guard let backend = states[Self.backend(service)],
              let b = backend[Self.server("blue", service)], let g = backend[Self.server("green", service)] else {
            throw TestKitError("\(instance) has no \(Self.backend(service)) with both servers: \(states)")
        }
        return (b, g)
    }

}

/// Reads `show servers state` from every instance of a `FleetLab` every `period` on a thread of
/// its own (blocking socket calls never hold a cooperative-pool thread), from `init` until
/// `stop()`: what the load balancers really held, moment by moment, while a run went on.
final class FleetWatch: @unchecked Sendable {
    struct Reading {
        var at: ContinuousClock.Instant
        var instance: String
        var states: [String: [String: HAProxyServer.ServerState]]

        /// `service`'s blue and green weights at this reading (nil when the backend was missing).
        func weights(_ service: String) -> (blue: Int, green: Int)? {
            guard let backend = states[FleetLab.backend(service)],
                  let b = backend[FleetLab.server("blue", service)], let g = backend[FleetLab.server("green", service)] else { return nil }
            return (b.weight, g.weight)
        }

        /// All of `service`'s traffic on green: blue at weight 0, green above it.
        func allGreen(_ service: String) -> Bool { weights(service).map { $0.blue == 0 && $0.green > 0 } ?? false }
        /// Green has any weight in `service`.
        func anyGreen(_ service: String) -> Bool { (weights(service)?.green ?? 0) > 0 }
    }

    private let lock = NSLock()
    private var readings: [Reading] = []
    private var failures = 0
    private var stopping = false
    private var finished = false

    init(_ lab: FleetLab, every period: Duration = .milliseconds(20)) {
        let instances = FleetLab.instanceNames.map { ($0, lab.instances[$0]!) }
        let micros = useconds_t(period.components.seconds * 1_000_000 + period.components.attoseconds / 1_000_000_000_000)
        let thread = Thread { [self] in
            while !lock.withLock({ stopping }) {
                for (name, server) in instances {
                    if let states = try? server.serverStatesBlocking() {
                        let reading = Reading(at: .now, instance: name, states: states)
                        lock.withLock { readings.append(reading) }
                    } else {
                        lock.withLock { failures += 1 }
                    }
                }
                usleep(micros)
            }
            lock.withLock { finished = true }
        }
        thread.name = "fleet watch"
        thread.start()
    }

    /// Stops the thread (suspending until it has) and returns every reading, oldest first, and
    /// how many reads failed (an instance down).
    func stop() async -> (readings: [Reading], failures: Int) {
        lock.withLock { stopping = true }
        await Wait.until(timeout: 10) { self.lock.withLock { self.finished } }
        return lock.withLock { (readings, failures) }
    }
}
