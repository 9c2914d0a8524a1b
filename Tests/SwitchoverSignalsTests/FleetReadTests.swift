import Foundation
import Logging
import SwitchoverCore
@testable import SwitchoverDrivers
import SwitchoverSignals
import SwitchoverTestKit
import Testing

/// The fleet's sampling read (`FleetRouter.readWeightsAndStats`: one read per HAProxy instance
/// for all its services) against two real HAProxy instances with two services each: it must
/// say what `stats()` and `currentWeights()` say, member by member, also with an instance gone.
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

    static func start(in folder: URL) async throws -> [HAProxyServer] {
        let backends = services.map { service in
            HAProxyServer.Backend(name: "be_\(service)", servers: [
                .init(name: "blue-\(service)-1", address: "127.0.0.1:9", weight: 1),
                .init(name: "green-\(service)-1", address: "127.0.0.1:9", weight: 0),
            ])
        }
        async let a = HAProxyServer.start(backends: backends, name: "lb-0", in: folder)
        async let b = HAProxyServer.start(backends: backends, name: "lb-1", in: folder)
        return [try await a, try await b]
    }

    @Test("one read per instance says what stats() and currentWeights() say: every service, every instance, the weights each holds")
    func sameAsTheTwoCalls() async throws {
        let folder = try TemporaryDirectory.make("fleet-read")
        defer { try? FileManager.default.removeItem(at: folder) }
        let haproxies = try await Self.start(in: folder)
        defer { for haproxy in haproxies { haproxy.stopInBackground() } }
        let fleet = try Self.fleet(haproxies)
        // One reader per instance, each answering both of its services: the path under test.
        #expect(fleet.instanceReads?.map { $0.members.count } == [2, 2])
        _ = try await fleet.apply(percentToTarget: 50, step: nil)

        let both = try await fleet.readWeightsAndStats()
        let stats = try await fleet.stats()
        let live = try await fleet.currentWeights()

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

    @Test("an instance gone: the read names it in `missing` and `unreachable` as the two calls do, and answers with the other")
    func instanceGone() async throws {
        let folder = try TemporaryDirectory.make("fleet-read-gone")
        defer { try? FileManager.default.removeItem(at: folder) }
        let haproxies = try await Self.start(in: folder)
        defer { for haproxy in haproxies { haproxy.stopInBackground() } }
        let fleet = try Self.fleet(haproxies)
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
