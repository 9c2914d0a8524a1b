import Foundation
import Logging
import SwitchoverCore
@testable import SwitchoverDrivers
import SwitchoverSignals
import SwitchoverTestKit
import Testing

/// The fleet's reads (one per HAProxy instance for all its services: `readWeightsAndStats`,
/// `stats()`, `currentWeights()`) against two real HAProxy instances with two services each:
/// they must say what the driver reading each backend alone says, member by member, and agree
/// with each other, also with an instance gone.
@Suite
struct FleetReadTests {
    static let services = ["cart", "search"]

    static func fleet(_ haproxies: [HAProxyServer]) throws -> FleetRouter {
        let location = SourceLocation(file: "test", line: 1, column: 1)
        let spec = HAProxySpec(instances: haproxies.enumerated().map { HAProxyInstance(name: "lb-\($0.offset)", socket: $0.element.socketPath) },
                               backends: services.map { ServiceBackend(service: $0, backend: "be_\($0)") })
        let policy = Policy(name: "test", loadBalancer: .haproxy(spec), steps: [50, 100], bake: .seconds(1),
                            interval: .seconds(1), failureThreshold: 1, gates: [], rollback: RollbackSpec(automatic: true, hardSignal: nil),
                            drain: DrainSpec(maxActiveSessions: 0, holdFor: .seconds(1), dnsTTL: .zero, timeout: .seconds(60), forceAfter: nil),
                            decommission: DecommissionSpec(requireApproval: true), location: location)
        func cluster(_ name: String) -> Cluster {
            Cluster(name: name, istio: IstioSpec(version: "1.27.4", revision: nil),
                    trust: TrustSpec(trustDomain: "cluster.local", rootCerts: "/dev/null", certChain: nil, probe: nil),
                    loadBalancer: ClusterLoadBalancerSpec(services: services.map { ServiceServers(service: $0, servers: ["\(name)-\($0)-1"]) }),
                    health: nil, location: location)
        }
        let made = try DriverRegistry.standard.make(policy: policy, from: cluster("blue"), to: cluster("green"), logger: Logger(label: "test.fleet-read"))
        return try #require(made.router as? FleetRouter)
    }

    /// Two real HAProxy instances with both services' backends, and the fleet `run` builds
    /// over them; stopped and removed after `body`.
    static func withFleet(_ name: String, _ body: ([HAProxyServer], FleetRouter) async throws -> Void) async throws {
        let folder = try TemporaryDirectory.make(name)
        defer { try? FileManager.default.removeItem(at: folder) }
        let backends = services.map { service in
            HAProxyServer.Backend(name: "be_\(service)", servers: [
                .init(name: "blue-\(service)-1", address: "127.0.0.1:9", weight: 1),
                .init(name: "green-\(service)-1", address: "127.0.0.1:9", weight: 0),
            ])
        }
        async let a = HAProxyServer.start(backends: backends, name: "lb-0", in: folder)
        async let b = HAProxyServer.start(backends: backends, name: "lb-1", in: folder)
        let haproxies = [try await a, try await b]
        defer { for haproxy in haproxies { haproxy.stopInBackground() } }
        try await body(haproxies, try fleet(haproxies))
    }

    /// The HAProxy driver alone on one instance's backend: its own `show servers state` and
    /// `show stat` of that backend, the reference the fleet's shared read is held to.
    static func alone(_ haproxy: HAProxyServer, _ service: String) throws -> HAProxyLoadBalancer {
        try HAProxyLoadBalancer(spec: HAProxySpec(socket: haproxy.socketPath, backend: "be_\(service)"),
                                from: ClusterServers(cluster: "blue", servers: ["blue-\(service)-1"]),
                                to: ClusterServers(cluster: "green", servers: ["green-\(service)-1"]),
                                logger: Logger(label: "test.fleet-read"))
    }

    @Test("one read per instance says what each member's own reads say, and what stats() and currentWeights() say: every service, every instance, the weights each holds")
    func sameAsTheMembersOwnReads() async throws {
        try await Self.withFleet("fleet-read") { haproxies, fleet in
            // One reader per instance, each answering both of its services: the path under test.
            #expect(fleet.instanceReads?.map { $0.members.count } == [2, 2])
            _ = try await fleet.apply(percentToTarget: 50, step: nil)

            let both = try await fleet.readWeightsAndStats()
            let stats = try await fleet.stats()
            let live = try await fleet.currentWeights()

            // Held to the driver reading each backend for itself, a path that shares nothing.
            for (instance, haproxy) in zip(["lb-0", "lb-1"], haproxies) {
                for service in Self.services {
                    let alone = try Self.alone(haproxy, service)
                    let own = try await alone.currentWeights()
                    #expect(both.live.members?.first { $0.instance == instance && $0.service == service }?.assignment == own.assignment,
                            "\(instance) \(service)")
                    let counted = try await alone.stats()
                    for cluster in ["blue", "green"] {
                        #expect(both.stats.instances?[instance]?.services?[service]?[cluster]?.servers == counted.clusters[cluster]?.servers,
                                "\(instance) \(service) \(cluster)")
                    }
                }
            }

            #expect(both.live.members == live.members)
            #expect(both.live.members?.count == 4, "2 instances × 2 services: \(String(describing: both.live.members))")
            #expect(both.live.assignment == live.assignment)
            #expect(both.live.effectivePercentToTarget == live.effectivePercentToTarget && live.effectivePercentToTarget == 50, "\(both.live.effectivePercentToTarget) \(live.effectivePercentToTarget) \(live.assignment)")
            #expect(both.live.unreachable.isEmpty && both.live.disagreements.isEmpty)
            #expect(both.stats.missing == nil)
            #expect(Set(both.stats.instances?.keys.map { $0 } ?? []) == ["lb-0", "lb-1"])
            #expect(Set(both.stats.services?.keys.map { $0 } ?? []) == Set(Self.services))
            for service in Self.services {
                for cluster in ["blue", "green"] {
                    #expect(both.stats.services?[service]?[cluster]?.servers == stats.services?[service]?[cluster]?.servers,
                            "\(service) \(cluster)")
                }
            }
            // The sampler takes this path for a fleet that is its own observer.
            let sampled = try await LoadBalancerSampler(router: fleet, observer: fleet).sampleWithWeights(at: .seconds(0))
            #expect(sampled.live.members == live.members)
            #expect(Set(sampled.sample.services?.keys.map { $0 } ?? []) == Set(Self.services))
        }
    }

    @Test("an instance gone: the read names it in `missing` and `unreachable` as the two calls do, and answers with the other")
    func instanceGone() async throws {
        try await Self.withFleet("fleet-read-gone") { haproxies, fleet in
            await haproxies[1].kill()

            let both = try await fleet.readWeightsAndStats()
            let live = try await fleet.currentWeights()
            let stats = try await fleet.stats()
            #expect(both.live.unreachable == live.unreachable)
            #expect(both.live.unreachable.count == 1 && both.live.unreachable[0].hasPrefix("lb-1"), "\(both.live.unreachable)")
            #expect(both.stats.missing == stats.missing)
            #expect(Set(both.stats.instances?.keys.map { $0 } ?? []) == ["lb-0"])
            #expect(both.live.members?.map(\.instance) == ["lb-0", "lb-0"])

            await haproxies[0].kill()
            await #expect(throws: LoadBalancerError.self) { try await fleet.readWeightsAndStats() }
        }
    }
}
