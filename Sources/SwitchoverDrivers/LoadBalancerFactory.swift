import Foundation
import Logging
import SwitchoverCore

/// Makes the driver a policy names, bound to FROM and TO.
///
/// Refuses, rather than guessing, when the clusters cannot be driven: a cluster without
/// servers, a server named in both clusters, a server name the load balancer's syntax cannot
/// carry. An unknown driver name never gets this far: `LoadBalancerSpec` has one case per
/// driver, and the configuration loader rejects any other name with its file and line; use
/// `makeLoadBalancer(driver:...)` when the name comes as text.
public func makeLoadBalancer(policy: Policy, from: Cluster, to: Cluster, logger: Logger) throws -> any LoadBalancer {
    let fromServers = ClusterServers(cluster: from.name, servers: from.loadBalancer.servers)
    let toServers = ClusterServers(cluster: to.name, servers: to.loadBalancer.servers)
    let driver = policy.loadBalancer.driverName
    try validateClusters(fromServers, toServers, driver: driver)
    switch policy.loadBalancer {
    case .haproxy(let spec):
        return try HAProxyLoadBalancer(spec: spec, from: fromServers, to: toServers, logger: logger)
    case .envoy(let spec):
        return try EnvoyLoadBalancer(spec: spec, from: fromServers, to: toServers, logger: logger)
    }
}

/// The driver names `makeLoadBalancer` knows.
public let loadBalancerDrivers = ["haproxy", "envoy"]

/// For a driver named in text: an unknown name is `.unknownDriver`, never a fallback.
public func makeLoadBalancer(driver: String, spec: LoadBalancerSpec, from: Cluster, to: Cluster,
                             logger: Logger) throws -> any LoadBalancer {
    guard loadBalancerDrivers.contains(driver), driver == spec.driverName else {
        throw LoadBalancerError(.unknownDriver, driver: driver, address: "-",
                                message: "unknown load-balancer driver '\(driver)' (known: \(loadBalancerDrivers.joined(separator: ", ")))")
    }
    let fromServers = ClusterServers(cluster: from.name, servers: from.loadBalancer.servers)
    let toServers = ClusterServers(cluster: to.name, servers: to.loadBalancer.servers)
    try validateClusters(fromServers, toServers, driver: driver)
    switch spec {
    case .haproxy(let spec):
        return try HAProxyLoadBalancer(spec: spec, from: fromServers, to: toServers, logger: logger)
    case .envoy(let spec):
        return try EnvoyLoadBalancer(spec: spec, from: fromServers, to: toServers, logger: logger)
    }
}

func validateClusters(_ from: ClusterServers, _ to: ClusterServers, driver: String) throws {
    for cluster in [from, to] where cluster.servers.isEmpty {
        throw LoadBalancerError(.invalidConfiguration, driver: driver, address: "-",
                                message: "cluster '\(cluster.cluster)' lists no loadBalancer.servers")
    }
    if from.cluster == to.cluster {
        throw LoadBalancerError(.invalidConfiguration, driver: driver, address: "-",
                                message: "FROM and TO are the same cluster '\(from.cluster)'")
    }
    let shared = Set(from.servers).intersection(to.servers)
    if let server = shared.sorted().first {
        throw LoadBalancerError(.invalidConfiguration, driver: driver, address: "-", server: server,
                                message: "server '\(server)' is listed in both '\(from.cluster)' and '\(to.cluster)'")
    }
    for cluster in [from, to] {
        if Set(cluster.servers).count != cluster.servers.count {
            throw LoadBalancerError(.invalidConfiguration, driver: driver, address: "-",
                                    message: "cluster '\(cluster.cluster)' lists a server twice")
        }
    }
}

