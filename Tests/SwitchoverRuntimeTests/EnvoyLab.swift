import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverTestKit

/// A whole cutover on loopback with a real Envoy in front of the lab's nginx backends: Envoy
/// clusters `blue` and `green` (one endpoint each, blue-1's and green-1's nginx), routes from a
/// file-based RDS that starts at blue 100, green 0, and the policy's `envoy` section pointing at
/// that route file and Envoy's admin. The rest (PKI, configuration, journal, the BUILT
/// `switchover` binary) is `Lab`'s.
final class EnvoyLab: Lab, @unchecked Sendable {
    let envoy: EnvoyServer

    init(_ name: String, policy: PolicyOptions = PolicyOptions()) async throws {
        // Both are HAProxy's: Envoy has no backend lines, and the Prometheus gate scrapes HAProxy.
        precondition(policy.backendLines.isEmpty && !policy.prometheusGate, "HAProxy options in an Envoy lab")
        let backends = try await Lab.startBackends(name)
        envoy = try await EnvoyServer.start(clusters: [(name: "blue", endpoints: [backends.blue.address]),
                                                       (name: "green", endpoints: [backends.green.address])],
                                      initialWeights: [(cluster: "blue", weight: 100), (cluster: "green", weight: 0)],
                                      in: backends.folder)
        super.init(backends: backends, frontURL: envoy.url)
        try await writeConfiguration(policy, loadBalancer: ["driver: envoy", "envoy:", "  routeFile: \(envoy.routeFile.path)",
                                                      "  routeName: \(envoy.routeName)",
                                                      "  admin: \(envoy.adminURL.absoluteString)"],
                               servers: ["blue": ["blue"], "green": ["green"]])
    }

    deinit {
        stopAll()
    }

    override func stopAll() {
        load?.stopInBackground(grace: 1)
        envoy.stopInBackground()
        super.stopAll()
    }

    func driver() throws -> EnvoyLoadBalancer {
        try EnvoyLoadBalancer(spec: EnvoySpec(routeFile: envoy.routeFile.path, routeName: envoy.routeName, admin: envoy.adminURL),
                              from: ClusterServers(cluster: "blue", servers: ["blue"]),
                              to: ClusterServers(cluster: "green", servers: ["green"]), logger: logger)
    }

    /// Live weights straight from Envoy's admin (the route's `weighted_clusters`).
    func liveWeights() async throws -> (blue: Int, green: Int) {
        let live = try await driver().currentWeights()
        return (live.assignment.fromTotal, live.assignment.toTotal)
    }
}
