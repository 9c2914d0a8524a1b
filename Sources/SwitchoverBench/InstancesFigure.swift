import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverNet
import SwitchoverSignals
import SwitchoverTestKit

/// Issue 14's figures: several HAProxy instances and several services in one switchover.
///
/// - One step with read-back across 2 instances × 1,000 servers, through the fleet router
///   (`DriverRegistry.make`, as `run` builds it), against the same step on one instance alone
///   through the HAProxy driver: trials interleaved, same run. The instances are written at once,
///   so the ratio should stay near 1 (the issue's bar: at most 1.3×).
/// - One sample (counters and live weights, `LoadBalancerSampler.sampleWithWeights`, what the
///   coordinator does every sampling period) of 2 instances × 10,000 servers, against the raw
///   `show info;show stat` of one instance over `socat`: the floor.
/// - The coordinator's CPU during a run of 3 services × 2 instances at 250 ms sampling, against
///   one service on one instance, same run, same steps (no traffic: the cost is the sampling).
///
/// The servers point at a closed port and run no health checks: the control path is measured.
enum InstancesFigure {
    static func measure(trials: Int, switchover: String, quick: Bool) async throws -> [FigureRow] {
        var rows: [FigureRow] = []
        rows += try await stepAndSample(trials: trials)
        rows += try await cpu(trials: quick ? 1 : 4, switchover: switchover)
        return rows
    }

    static func servers(_ size: Int) -> (blue: [String], green: [String]) {
        ((0..<size / 2).map { "blue-\($0)" }, (0..<(size - size / 2)).map { "green-\($0)" })
    }

    static func instances(size: Int, in folder: URL) async throws -> [HAProxyServer] {
        let (blue, green) = servers(size)
        let backend = HAProxyServer.Backend(name: "app", servers: blue.map { .init(name: $0, address: "127.0.0.1:9", weight: 256) }
                                                + green.map { .init(name: $0, address: "127.0.0.1:9", weight: 0) })
        async let a = HAProxyServer.start(backends: [backend], name: "lb-a", in: folder)
        async let b = HAProxyServer.start(backends: [backend], name: "lb-b", in: folder)
        return [try await a, try await b]
    }

    /// The fleet router and sampler `run` would build for these instances (one service).
    static func fleet(_ haproxies: [HAProxyServer], size: Int, logger: Logger) throws -> (router: any WeightRouter, sampler: LoadBalancerSampler) {
        let (blue, green) = servers(size)
        let spec = HAProxySpec(instances: haproxies.enumerated().map { HAProxyInstance(name: "lb-\($0.offset)", socket: $0.element.socketPath) },
                               backends: [ServiceBackend(service: nil, backend: "app")])
        let location = SourceLocation(file: "bench", line: 1, column: 1)
        let policy = Policy(name: "bench", loadBalancer: .haproxy(spec), steps: [1, 5, 10, 25, 50, 75, 99, 100], bake: .seconds(1),
                            interval: .seconds(1), failureThreshold: 1, gates: [], rollback: RollbackSpec(automatic: true, hardSignal: nil),
                            drain: DrainSpec(maxActiveSessions: 0, holdFor: .seconds(1), dnsTTL: .zero, timeout: .seconds(60), forceAfter: nil),
                            decommission: DecommissionSpec(requireApproval: true), location: location)
        func cluster(_ name: String, _ servers: [String]) -> Cluster {
            Cluster(name: name, istio: IstioSpec(version: "1.27.4", revision: nil),
                    trust: TrustSpec(trustDomain: "cluster.local", rootCerts: "/dev/null", certChain: nil, probe: nil),
                    loadBalancer: ClusterLoadBalancerSpec(servers: servers), health: nil, location: location)
        }
        let made = try DriverRegistry.standard.make(policy: policy, from: cluster("blue", blue), to: cluster("green", green), logger: logger)
        return (made.router, LoadBalancerSampler(router: made.router, observer: made.observer))
    }

    static func stepAndSample(trials: Int) async throws -> [FigureRow] {
        var logger = Logger(label: "switchover.bench.instances")
        logger.logLevel = .error
        let socat = try Tools.require("socat")
        var rows: [FigureRow] = []

        progress("instances: one step with read-back, 2 instances × 1,000 servers vs one instance, \(trials) trials")
        do {
            let folder = try TemporaryDirectory.make("bench-instances-step")
            defer { try? FileManager.default.removeItem(at: folder) }
            let haproxies = try await instances(size: 1_000, in: folder)
            defer { for haproxy in haproxies { haproxy.stopInBackground() } }
            let (blue, green) = servers(1_000)
            let single = try HAProxyLoadBalancer(spec: HAProxySpec(socket: haproxies[0].socketPath, backend: "app"),
                                                 from: ClusterServers(cluster: "blue", servers: blue),
                                                 to: ClusterServers(cluster: "green", servers: green), logger: logger)
            let (router, _) = try fleet(haproxies, size: 1_000, logger: logger)
            let steps: [Double] = [1, 5, 10, 25, 50, 75, 99]
            _ = try await router.apply(percentToTarget: steps[0])
            var fleetTimes: [Double] = [], singleTimes: [Double] = []
            var fleetCPU: UInt64 = 0, singleCPU: UInt64 = 0   // this process's CPU (the coordinator's side), ns
            for trial in 0..<trials {
                // Every call moves lb-a to another step than it holds (the HAProxy driver writes
                // only what differs), alternating single, fleet, single, ...
                let percent = steps[(2 * trial + 1) % steps.count]
                // One instance alone first (the fleet's other instance keeps its weights), then
                // both: each trial writes a change on every instance it touches.
                var start = ContinuousClock.now
                var cpu = cpuNanoseconds()
                _ = try await single.apply(percentToTarget: percent)
                singleTimes.append(FleetBenchmark.milliseconds(ContinuousClock.now - start))
                singleCPU += cpuNanoseconds() - cpu
                start = ContinuousClock.now
                cpu = cpuNanoseconds()
                let live = try await router.apply(percentToTarget: steps[(2 * trial + 2) % steps.count])
                fleetTimes.append(FleetBenchmark.milliseconds(ContinuousClock.now - start))
                fleetCPU += cpuNanoseconds() - cpu
                guard live.unreachable.isEmpty else { throw TestKitError("an instance did not answer: \(live.unreachable)") }
            }
            // The floor the machine sets: the same lines (read, writes, read back) sent raw to
            // lb-a alone, then to both at once, no parsing: two HAProxy processes recounting
            // their backends at once on these cores.
            let clients = haproxies.map { LineClient(address: $0.socketPath, connectTimeout: .seconds(2), readTimeout: .seconds(10)) }
            var rawOne: [Double] = [], rawBoth: [Double] = []
            for trial in 0..<trials {
                func lines(_ step: Int) -> [String] {
                    single.commandLines(for: single.translation.weights(percentToTarget: steps[step % steps.count], from: blue, to: green))
                }
                let first = lines(2 * trial + 1), second = lines(2 * trial + 2)
                var start = ContinuousClock.now
                for line in first { _ = try await clients[0].send(line) }
                rawOne.append(FleetBenchmark.milliseconds(ContinuousClock.now - start))
                start = ContinuousClock.now
                async let a: Void = { for line in second { _ = try await clients[0].send(line) } }()
                async let b: Void = { for line in second { _ = try await clients[1].send(line) } }()
                _ = try await (a, b)
                rawBoth.append(FleetBenchmark.milliseconds(ContinuousClock.now - start))
            }
            let rawReference = Stats(rawOne)
            rows.append(Stats(rawBoth).row(
                "the same lines raw, to 2 instances at once (no parsing)", unit: "ms", reference: rawReference.median,
                referenceLabel: String(format: "to one instance: %.2f ms (%.2f–%.2f)", rawReference.median, rawReference.min, rawReference.max),
                note: "LineClient, the step's read, write and read-back lines; the machine's floor for the ratio above"))
            let reference = Stats(singleTimes)
            rows.append(Stats(fleetTimes).row(
                "one step, 2 instances × 1,000 servers (write both at once, read back each)", unit: "ms",
                reference: reference.median,
                referenceLabel: String(format: "one instance alone, same step: %.2f ms (%.2f–%.2f)", reference.median, reference.min, reference.max),
                note: "fleet router as `run` builds it (`instances: [lb-a, lb-b]`), against the HAProxy driver on lb-a alone; trials interleaved; "
                    + String(format: "coordinator CPU per step %.1f ms (one instance %.1f ms); ", Double(fleetCPU) / 1e6 / Double(trials), Double(singleCPU) / 1e6 / Double(trials))
                    + "bar: at most 1.3×"))
        }

        progress("instances: one sample of 2 instances × 10,000 servers vs raw show stat over socat, \(trials) trials")
        do {
            let folder = try TemporaryDirectory.make("bench-instances-sample")
            defer { try? FileManager.default.removeItem(at: folder) }
            let haproxies = try await instances(size: 10_000, in: folder)
            defer { for haproxy in haproxies { haproxy.stopInBackground() } }
            let (_, sampler) = try fleet(haproxies, size: 10_000, logger: logger)
            _ = try await sampler.sampleWithWeights(at: .seconds(0))
            var sampleTimes: [Double] = [], socatTimes: [Double] = []
            for _ in 0..<trials {
                var start = ContinuousClock.now
                let read = try await sampler.sampleWithWeights(at: .seconds(0))
                sampleTimes.append(FleetBenchmark.milliseconds(ContinuousClock.now - start))
                guard read.live.unreachable.isEmpty else { throw TestKitError("an instance did not answer: \(read.live.unreachable)") }
                start = ContinuousClock.now
                try FleetBenchmark.runSocat(socat, socket: haproxies[0].socketPath, line: "show info;show stat app 4 -1")
                socatTimes.append(FleetBenchmark.milliseconds(ContinuousClock.now - start))
            }
            let reference = Stats(socatTimes)
            let sample = Stats(sampleTimes)
            let verdict = sample.median < 125 ? "under half of 250 ms sampling"
                : "over half of 250 ms sampling: the coordinator stretches its sampling period (to at most 500 ms) and says why"
            rows.append(sample.row(
                "one sample, 2 instances × 10,000 servers (counters and live weights)", unit: "ms",
                reference: reference.median,
                referenceLabel: String(format: "raw `show info;show stat` of one instance over socat: %.1f ms (%.1f–%.1f)",
                                       reference.median, reference.min, reference.max),
                note: "`LoadBalancerSampler.sampleWithWeights` through the fleet router: 4 runtime-API reads at once (stats and weights of each instance), parsed; \(verdict)"))
        }
        return rows
    }

    /// The coordinator's CPU, every thread's time on a CPU over wall time from 2 s after start (preflight done)
    /// to the end of `run --until promoted`: 3 services × 2 instances, and 1 × 1, alternately.
    static func cpu(trials: Int, switchover: String) async throws -> [FigureRow] {
        progress("instances: coordinator CPU, 3 services × 2 instances vs 1 × 1 at 250 ms sampling, \(trials) trial(s) each")
        var fleetCPU: [Double] = [], singleCPU: [Double] = []
        for _ in 0..<trials {
            singleCPU.append(try await cpuOfRun(services: ["app"], instances: 1, switchover: switchover))
            fleetCPU.append(try await cpuOfRun(services: ["cart", "checkout", "search"], instances: 2, switchover: switchover))
        }
        let reference = Stats(singleCPU)
        return [Stats(fleetCPU).row(
            "coordinator CPU, 3 services × 2 instances", unit: "m", reference: reference.median,
            referenceLabel: String(format: "one service on one instance, same run: %.1f m (%.1f–%.1f)", reference.median, reference.min, reference.max),
            note: "CPU time of every thread (/proc/<pid>/task/*/schedstat, ns), shifting at 250 ms sampling (steps 50/100, bake 6 s, no gates, no traffic), from 2 s after start; bar: at most 1.5×")]
    }

    static func cpuOfRun(services: [String], instances count: Int, switchover: String) async throws -> Double {
        let folder = try TemporaryDirectory.make("bench-instances-cpu")
        defer { try? FileManager.default.removeItem(at: folder) }
        let fleet = services.count > 1 || count > 1
        func server(_ side: String, _ service: String) -> String { fleet ? "\(side)-\(service)-1" : "\(side)-1" }
        let backends = services.map { service in
            HAProxyServer.Backend(name: fleet ? "be_\(service)" : "app", servers: [
                .init(name: server("blue", service), address: "127.0.0.1:9", weight: 1),
                .init(name: server("green", service), address: "127.0.0.1:9", weight: 0),
            ])
        }
        var haproxies: [HAProxyServer] = []
        for index in 0..<count { haproxies.append(try await HAProxyServer.start(backends: backends, name: "lb-\(index)", in: folder)) }
        defer { for haproxy in haproxies { haproxy.stopInBackground() } }
        let trust = try await ConfigDocuments.sharedTrust(in: folder, clusters: ["blue", "green"])
        let clusters = [("blue", "1.27.4"), ("green", "1.28.0")].map { side, version in
            ClusterDocument(name: side, istioVersion: version, rootCerts: trust[side]!.roots.path, certChain: trust[side]!.chain.path,
                            servers: fleet ? [] : [server(side, "app")],
                            services: fleet ? services.map { ($0, [server(side, $0)]) } : nil)
        }
        let lines = fleet
            ? ["driver: haproxy", "haproxy:", "  instances:"]
                + haproxies.enumerated().map { "    - {name: lb-\($0.offset), socket: \($0.element.socketPath)}" }
                + ["  services: {\(services.map { "\($0): be_\($0)" }.joined(separator: ", "))}"]
            : PolicyDocument.haproxy(socket: haproxies[0].socketPath)
        let policy = PolicyDocument(name: "cpu", loadBalancer: lines, steps: [50, 100], bake: "6s", interval: "500ms", sampling: "250ms")
        try ConfigDocuments.write(clusters: clusters, policies: [policy], in: folder)
        let run = try ManagedProcess(name: "switchover run", executable: switchover,
                                     arguments: ["run", "blue", "green", "--policy", "cpu", "--until", "promoted",
                                                 "--clusters", folder.appendingPathComponent("clusters").path,
                                                 "--policies", folder.appendingPathComponent("policies").path,
                                                 "--state", folder.appendingPathComponent("state/state.db").path],
                                     logFile: folder.appendingPathComponent("run.log"))
        defer { run.stopInBackground() }
        let start = ContinuousClock.now
        var threads = ThreadCPU()
        var first: (reading: ThreadCPU, at: Double)?
        var lastAt = 0.0
        while run.isRunning {
            threads.read(run.pid)
            let at = seconds(since: start)
            if first == nil && at >= 2 { first = (threads, at) }
            lastAt = at
            try await Task.sleep(for: .milliseconds(100))
            guard seconds(since: start) < 60 else { throw TestKitError("cpu run: no end within 60 s:\n\(run.logTail())") }
        }
        guard run.exitStatus == 0, let first, lastAt > first.at else {
            throw TestKitError("cpu run exited \(run.exitStatus.map(String.init) ?? "?"):\n\(run.logTail())")
        }
        return threads.milliseconds(since: first.reading) / (lastAt - first.at)
    }
}
