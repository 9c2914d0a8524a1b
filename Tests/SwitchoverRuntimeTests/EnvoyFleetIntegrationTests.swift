import Foundation
import Logging
import Testing
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverTestKit

/// Issue 14 with Envoy in front: two real Envoys (`edge-a`, `edge-b`), each carrying two
/// services as two RDS routes (`cart_route`, `checkout_route`, one listener and one route file
/// each), in front of the same nginx (`blue-cart`, `green-cart`, `blue-checkout`,
/// `green-checkout`: Envoy clusters of one endpoint each). The policy names both Envoys with
/// their admin and route files and maps each service to its route; the BUILT binary runs it.
@Suite("Fleet through Envoy: two Envoys, two services as two routes", .serialized)
struct EnvoyFleetIntegrationTests {
    static let services = ["cart", "checkout"]
    static let instances = ["edge-a", "edge-b"]
    static func route(_ service: String) -> String { "\(service)_route" }
    static func cluster(_ side: String, _ service: String) -> String { "\(side)-\(service)" }

    final class EnvoyFleetLab: SwitchoverLab, @unchecked Sendable {
        let folder: URL
        let nginx: [String: NginxBackend]
        let envoys: [String: EnvoyServer]
        var statePath: String { folder.appendingPathComponent("state/state.db").path }

        init(_ name: String, waves: [[String]]?, steps: [Int] = [50, 100], holdFor: String = "1s") async throws {
            folder = try TemporaryDirectory.make(name)
            let folder = folder
            nginx = try await withThrowingTaskGroup(of: (String, NginxBackend).self) { group in
                for service in EnvoyFleetIntegrationTests.services {
                    for side in ["blue", "green"] {
                        let cluster = EnvoyFleetIntegrationTests.cluster(side, service)
                        group.addTask { (cluster, try await NginxBackend.start(name: cluster, in: folder)) }
                    }
                }
                return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
            }
            let clusters = nginx.map { (name: $0.key, endpoints: [$0.value.address]) }.sorted { $0.name < $1.name }
            let routes = EnvoyFleetIntegrationTests.services.map { service in
                (name: EnvoyFleetIntegrationTests.route(service),
                 weights: [(cluster: EnvoyFleetIntegrationTests.cluster("blue", service), weight: 100),
                           (cluster: EnvoyFleetIntegrationTests.cluster("green", service), weight: 0)])
            }
            async let a = EnvoyServer.start(clusters: clusters, routes: routes, name: "edge-a", in: folder)
            async let b = EnvoyServer.start(clusters: clusters, routes: routes, name: "edge-b", in: folder)
            envoys = ["edge-a": try await a, "edge-b": try await b]
            try await writeConfiguration(waves: waves, steps: steps, holdFor: holdFor)
        }

        deinit {
            for envoy in envoys.values { envoy.stopInBackground() }
            for backend in nginx.values { backend.stopInBackground() }
            try? FileManager.default.removeItem(at: folder)
        }

        func writeConfiguration(waves: [[String]]?, steps: [Int], holdFor: String) async throws {
            let trust = try await ConfigDocuments.sharedTrust(in: folder, clusters: ["blue", "green"])
            let services = EnvoyFleetIntegrationTests.services
            let clusters = [("blue", "1.27.4"), ("green", "1.28.0")].map { side, version in
                ClusterDocument(name: side, istioVersion: version, rootCerts: trust[side]!.roots.path, certChain: trust[side]!.chain.path,
                                services: services.map { ($0, [EnvoyFleetIntegrationTests.cluster(side, $0)]) },
                                health: "http://\(nginx[EnvoyFleetIntegrationTests.cluster(side, "cart")]!.address)/healthz")
            }
            let loadBalancer = ["driver: envoy", "envoy:",
                                "  services: {\(services.map { "\($0): \(EnvoyFleetIntegrationTests.route($0))" }.joined(separator: ", "))}",
                                "  instances:"]
                + EnvoyFleetIntegrationTests.instances.map { name in
                    let envoy = envoys[name]!
                    let files = services.map { "\($0): \(envoy.routeFiles[EnvoyFleetIntegrationTests.route($0)]!.path)" }
                    return "    - {name: \(name), admin: \(envoy.adminURL.absoluteString), routeFiles: {\(files.joined(separator: ", "))}}"
                }
            let policy = PolicyDocument(
                name: "fleet", loadBalancer: loadBalancer, steps: steps, bake: "1s", interval: "500ms", sampling: "250ms",
                failureThreshold: 2, pauseAfterErrors: 2,
                gates: ["name: green-errors\nloadBalancer: {cluster: green, max5xxRatio: 0.05, minRequests: 5}"],
                drain: PolicyDocument.drain(holdFor: holdFor, dnsTTL: "0s", timeout: "1m"), waves: waves)
            try ConfigDocuments.write(clusters: clusters, policies: [policy], in: folder)
        }

        func run(until: String) throws -> ManagedProcess {
            try ManagedProcess(name: "switchover run", executable: try switchoverExecutable().path,
                               arguments: ["run", "blue", "green", "--policy", "fleet", "--until", until] + globalArguments,
                               logFile: folder.appendingPathComponent("run-\(UUID().uuidString.prefix(6)).log"))
        }

        /// The live weights of `service`'s route on `instance`, read from that Envoy's admin.
        func weights(_ instance: String, _ service: String) async throws -> (blue: Int, green: Int) {
            let envoy = envoys[instance]!
            let route = EnvoyFleetIntegrationTests.route(service)
            let reader = try EnvoyLoadBalancer(
                spec: EnvoySpec(routeFile: envoy.routeFiles[route]!.path, routeName: route, admin: envoy.adminURL),
                from: ClusterServers(cluster: "blue", servers: [EnvoyFleetIntegrationTests.cluster("blue", service)]),
                to: ClusterServers(cluster: "green", servers: [EnvoyFleetIntegrationTests.cluster("green", service)]),
                logger: .init(label: "test"))
            let live = try await reader.currentWeights()
            return (live.assignment.fromTotal, live.assignment.toTotal)
        }

        func startLoad(_ instances: [String], seconds: Int) throws -> [ManagedProcess] {
            try instances.flatMap { instance in
                try EnvoyFleetIntegrationTests.services.map { service in
                    let port = envoys[instance]!.ports[EnvoyFleetIntegrationTests.route(service)]!
                    return try Load.startHey("http://127.0.0.1:\(port)/", seconds: seconds, rate: 15, workers: 2,
                                             logFile: folder.appendingPathComponent("hey-\(instance)-\(service).log"))
                }
            }
        }
    }

    @Test("waves [[cart], [checkout]] through both Envoys: cart's route all green before checkout's moves; every route on both Envoys ends all green; 0 failed requests")
    func healthyWaves() async throws {
        let lab = try await EnvoyFleetLab("envoy-fleet-waves", waves: [["cart"], ["checkout"]])
        let loads = try lab.startLoad(Self.instances, seconds: 60)
        defer { for load in loads { load.stopInBackground(grace: 1) } }
        try await Task.sleep(for: .milliseconds(500))
        let run = try lab.run(until: "promoted")
        defer { run.stopInBackground() }
        // Every 50 ms: checkout's green weight may move only once cart is all green on both.
        var order: [String] = []
        while run.isRunning {
            for instance in Self.instances {
                let cart = try await lab.weights(instance, "cart"), checkout = try await lab.weights(instance, "checkout")
                if checkout.green > 0 && cart.blue > 0 { order.append("\(instance): checkout \(checkout) while cart \(cart)") }
            }
            await Wait.pause(.milliseconds(50))
        }
        #expect(run.exitStatus == 0, "\(run.logTail(lines: 30))")
        #expect(order.isEmpty, "\(order)")
        for instance in Self.instances {
            for service in Self.services {
                let live = try await lab.weights(instance, service)
                #expect(live.blue == 0 && live.green > 0, "\(instance) \(service): \(live)")
            }
        }
        let status = try await lab.statusJSON()
        let services = status["services"] as? [String: Any]
        #expect(Set(services?.keys.map { $0 } ?? []) == Set(Self.services), "\(status)")
        for load in loads {
            let report = try await HeyReport.finish(load)
            #expect(report.responses > 0 && report.failed == 0, "\(report)")
        }
    }

    @Test("edge-b stopped in the middle of a step pauses the run naming it, never a rollback; started again, the step is written on it by itself and the run promotes; 0 failed through edge-a")
    func instanceDownMidStep() async throws {
        let lab = try await EnvoyFleetLab("envoy-fleet-down", waves: nil, steps: [50, 100])
        let loads = try lab.startLoad(["edge-a"], seconds: 60)
        defer { for load in loads { load.stopInBackground(grace: 1) } }
        let run = try lab.run(until: "promoted")
        defer { run.stopInBackground() }
        // Step 1 baking: stop edge-b.
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, (try await lab.statusJSON())["bakeRemainingSeconds"] as? Double == nil {
            await Wait.pause(.milliseconds(100))
        }
        await lab.envoys["edge-b"]!.stop()
        var paused: [String: Any] = [:]
        while ContinuousClock.now < deadline + .seconds(30) {
            paused = try await lab.statusJSON()
            if paused["phase"] as? String == "paused" { break }
            await Wait.pause(.milliseconds(100))
        }
        #expect(paused["phase"] as? String == "paused", "\(paused)")
        #expect((paused["reason"] as? String)?.contains("edge-b") == true, "\(paused)")
        try await lab.envoys["edge-b"]!.restart()
        guard await run.waitForExit(timeout: 60) else { Issue.record("still running: \(run.logTail(lines: 30))"); return }
        #expect(run.exitStatus == 0, "\(run.logTail(lines: 30))")
        let log = run.logTail(lines: 400)
        #expect(!log.contains("rollbackStarted"), "\(log)")
        for instance in Self.instances {
            for service in Self.services {
                let live = try await lab.weights(instance, service)
                #expect(live.blue == 0 && live.green > 0, "\(instance) \(service): \(live)")
            }
        }
        for load in loads {
            let report = try await HeyReport.finish(load)
            #expect(report.responses > 0 && report.failed == 0, "\(report)")
        }
    }
}
