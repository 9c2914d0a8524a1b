import Foundation
import SwitchoverCore
import SwitchoverDrivers
import Testing

private func cluster(_ name: String, _ servers: [String]) -> Cluster {
    Cluster(name: name, istio: IstioSpec(version: "1.27.4", revision: nil),
            trust: TrustSpec(trustDomain: "cluster.local", rootCerts: "/dev/null", certChain: nil, probe: nil),
            loadBalancer: ClusterLoadBalancerSpec(servers: servers), health: nil,
            location: SourceLocation(file: "\(name).yaml", line: 1, column: 1))
}

private func policy(_ spec: LoadBalancerSpec) -> Policy {
    Policy(name: "p", loadBalancer: spec, steps: [50, 100], bake: .seconds(1), interval: .seconds(1),
           failureThreshold: 1, gates: [], rollback: RollbackSpec(automatic: true, hardSignal: nil),
           drain: DrainSpec(maxActiveSessions: 0, holdFor: .seconds(1), dnsTTL: .zero, timeout: .seconds(10), forceAfter: nil),
           decommission: DecommissionSpec(requireApproval: false),
           location: SourceLocation(file: "p.yaml", line: 1, column: 1))
}

struct FactoryTests {
    let haproxy = LoadBalancerSpec.haproxy(HAProxySpec(socket: "/run/haproxy/admin.sock", backend: "app"))
    let envoy = LoadBalancerSpec.envoy(EnvoySpec(routeFile: "/tmp/route.yaml", routeName: "r",
                                                 admin: URL(string: "http://127.0.0.1:9901")!))

    @Test("the policy's driver is the one made, bound to FROM and TO, with the translation plan uses")
    func makesTheNamedDriver() throws {
        let (lb, observer) = try DriverRegistry.standard.make(policy: policy(haproxy), from: cluster("blue", ["b1", "b2"]),
                                                              to: cluster("green", ["g1"]), logger: testLogger)
        #expect(lb is HAProxyLoadBalancer)
        #expect(observer as AnyObject === lb as AnyObject, "HAProxy counts its own traffic")
        #expect(lb.translation == .haproxy)
        #expect(lb.capabilities == [.drain, .ready, .shutdownSessions])
        #expect(lb.fromCluster == ClusterServers(cluster: "blue", servers: ["b1", "b2"]))
        let e = try DriverRegistry.standard.make(policy: policy(envoy), from: cluster("blue", ["blue"]),
                                                 to: cluster("green", ["green"]), logger: testLogger).router
        #expect(e is EnvoyLoadBalancer)
        #expect(e.address == "http://127.0.0.1:9901")
        #expect(e.capabilities.isEmpty)
    }

    @Test("a driver the registry does not hold is an error listing the ones it does, never a fallback")
    func unknownDriver() throws {
        let error = try #require(throws: LoadBalancerError.self) {
            try DriverRegistry([EnvoyDriver()]).make(policy: policy(haproxy), from: cluster("blue", ["b"]),
                                                     to: cluster("green", ["g"]), logger: testLogger)
        }
        #expect(error.code == .unknownDriver)
        #expect(error.description.contains("'haproxy'"))
        #expect(error.description.contains("known: envoy"))
    }

    @Test("a server in both clusters, or a name HAProxy cannot carry, is refused")
    func refusesUndrivableClusters() throws {
        let shared = try #require(throws: LoadBalancerError.self) {
            try DriverRegistry.standard.make(policy: policy(haproxy), from: cluster("blue", ["s1", "s2"]),
                                             to: cluster("green", ["s2"]), logger: testLogger)
        }
        #expect(shared.code == .invalidConfiguration)
        #expect(shared.server == "s2")
        let injected = try #require(throws: LoadBalancerError.self) {
            try DriverRegistry.standard.make(policy: policy(haproxy), from: cluster("blue", ["b1;shutdown sessions"]),
                                             to: cluster("green", ["g"]), logger: testLogger)
        }
        #expect(injected.code == .invalidConfiguration)
    }
}
