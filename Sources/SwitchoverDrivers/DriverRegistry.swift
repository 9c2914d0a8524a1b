import Foundation
import Logging
import SwitchoverCore

/// One load-balancer driver: its description (name, how its policy section reads, weight range,
/// capabilities: what the domain and `validate` need) and how its router and observer are built.
///
/// A driver lives in its own folder (`HAProxy/`, `Envoy/`): this conformance, its settings type
/// and the router. Adding one is that folder plus one line in `DriverRegistry.standard`; nothing
/// in SwitchoverCore, the runtime or the command line names a driver.
public protocol LoadBalancerDriver: DriverDescription {
    /// The router for `settings` (what this driver's `decodeSection` returned), bound to FROM
    /// and TO, and the observer that counts their traffic, or nil when the load balancer counts
    /// nothing (DNS, a cloud load balancer: the counters then come from elsewhere). Builds, does
    /// not connect: a load balancer that is down is found at the first read. Throws
    /// `LoadBalancerError` `.invalidConfiguration` for what the driver cannot carry (a name its
    /// syntax cannot hold, settings of another driver).
    func make(_ settings: any DriverSpec, from: ClusterServers, to: ClusterServers, logger: Logger) throws
        -> (router: any WeightRouter, observer: (any TrafficObserver)?)
}

/// The drivers Switchover knows, in the order messages list them: what the configuration loader
/// accepts in `spec.loadBalancer.driver` (`descriptions`), and what builds a policy's router and
/// observer (`make`). Shaped like Flagger's router and metrics-provider factories, but a table
/// rather than a `switch`, so that the loader can list the known names and a driver is added in
/// one line.
public struct DriverRegistry: Sendable {
    public let drivers: [any LoadBalancerDriver]

    /// Every driver Switchover ships: one line each.
    public static let standard = DriverRegistry([
        HAProxyDriver(),
        EnvoyDriver(),
        Route53Driver(),
        ALBDriver(),
    ])

    /// Names must be unique, and none may be `driver` (the key that names the driver sits
    /// beside each driver's section in `spec.loadBalancer`).
    public init(_ drivers: [any LoadBalancerDriver]) {
        let names = drivers.map(\.name)
        precondition(Set(names).count == names.count, "driver names must be unique: \(names)")
        precondition(!names.contains("driver") && !names.contains(""), "'driver' and '' cannot be driver names")
        self.drivers = drivers
    }

    /// What `ConfigLoader` takes: each driver's description.
    public var descriptions: [any DriverDescription] { drivers.map { $0 } }

    /// The known names, in order.
    public var names: [String] { drivers.map(\.name) }

    public func driver(named name: String) -> (any LoadBalancerDriver)? {
        drivers.first { $0.name == name }
    }

    /// The router and the observer of the policy's load balancer, bound to FROM and TO.
    ///
    /// Refuses, rather than guessing, when the clusters cannot be driven: a cluster without
    /// servers, a server named in both clusters, FROM and TO the same; when the driver's
    /// name is not in this registry (`.unknownDriver`, listing the known ones: a policy the
    /// loader read with other drivers); and when the driver counts no traffic (Route53, ALB)
    /// and no other source does.
    ///
    /// `observer`: the observer of the policy's `traffic` section (made by the runtime, which
    /// knows Prometheus), used in place of the driver's own; with it, a driver that counts
    /// nothing can run. Without it, such a driver is refused naming it.
    public func make(policy: Policy, from: Cluster, to: Cluster, logger: Logger,
                     observer replacement: (any TrafficObserver)? = nil) throws
        -> (router: any WeightRouter, observer: any TrafficObserver) {
        let made = try makeRouter(policy: policy, from: from, to: to, logger: logger)
        guard let observer = replacement ?? made.observer else {
            throw LoadBalancerError(.unsupported, driver: made.router.driver, address: made.router.address,
                                    message: "driver \(made.router.driver) moves weights but counts no traffic, and this policy names no other "
                                        + "source of per-cluster counters for its gates, hard signal and drain (add 'traffic.prometheus')")
        }
        return (made.router, observer)
    }

    /// The router of the policy's load balancer and its own observer, nil when the load balancer
    /// counts nothing (`DriverDescription.countsTraffic` false): the caller then pairs the router
    /// with another observer (the policy's `traffic.prometheus`), which also may replace a
    /// driver's own counters.
    public func makeRouter(policy: Policy, from: Cluster, to: Cluster, logger: Logger) throws
        -> (router: any WeightRouter, observer: (any TrafficObserver)?) {
        let name = policy.loadBalancer.driverName
        guard let driver = driver(named: name) else {
            throw LoadBalancerError(.unknownDriver, driver: name, address: "-",
                                    message: "unknown load-balancer driver '\(name)' (known: \(names.joined(separator: ", ")))")
        }
        if let fleet = policy.loadBalancer.settings as? any FleetSpec, fleet.isFleet {
            let made = try makeFleet(fleet, driver: driver, policy: policy, from: from, to: to, logger: logger)
            return (made.router, made.observer)
        }
        func placed(_ cluster: Cluster) throws -> ClusterServers {
            guard driver.readsClusterSection else {
                return ClusterServers(cluster: cluster.name, servers: cluster.loadBalancer.servers)
            }
            guard let section = cluster.loadBalancer.sections[driver.name] else {
                throw LoadBalancerError(.invalidConfiguration, driver: driver.name, address: "-",
                                        message: "cluster '\(cluster.name)' has no spec.loadBalancer.\(driver.name) section saying where it sits in \(driver.name)")
            }
            return ClusterServers(cluster: cluster.name, servers: [section.spec.server], section: section)
        }
        return try makeOne(driver, settings: policy.loadBalancer.settings, from: placed(from), to: placed(to), logger: logger)
    }

    /// One router and observer of `driver` for one pair of server lists (the single form, or one
    /// member of a fleet), the pair checked first.
    func makeOne(_ driver: any LoadBalancerDriver, settings: any DriverSpec, from: ClusterServers, to: ClusterServers,
                 logger: Logger) throws -> (router: any WeightRouter, observer: (any TrafficObserver)?) {
        try validateClusters(from, to, driver: driver.name)
        return try driver.make(settings, from: from, to: to, logger: logger)
    }
}

extension DriverRegistry {
    /// Several instances or services: one router per (instance, service), bound to that
    /// service's servers of FROM and TO, behind one `FleetRouter`.
    func makeFleet(_ fleet: any FleetSpec, driver: any LoadBalancerDriver, policy: Policy, from: Cluster, to: Cluster,
                   logger: Logger) throws -> (router: any WeightRouter, observer: (any TrafficObserver)?) {
        var members: [FleetRouter.Member] = []
        for member in fleet.members {
            var servers: [ClusterServers] = []
            for cluster in [from, to] {
                guard let listed = cluster.loadBalancer.servers(of: member.service) else {
                    throw LoadBalancerError(.invalidConfiguration, driver: driver.name, address: "-",
                                            message: cluster.loadBalancer.services == nil
                                                ? "cluster '\(cluster.name)' lists its servers without services, and the policy names services"
                                                : "cluster '\(cluster.name)' lists no servers for service '\(member.service ?? "")'")
                }
                servers.append(ClusterServers(cluster: cluster.name, servers: listed))
            }
            let made = try makeOne(driver, settings: member.spec, from: servers[0], to: servers[1], logger: logger)
            guard let observer = made.observer else {
                throw LoadBalancerError(.unsupported, driver: driver.name, address: made.router.address,
                                        message: "\(driver.name) counts no traffic and cannot be one instance of several")
            }
            members.append(.init(instance: member.instance, service: member.service, target: member.target,
                                 router: made.router, observer: observer))
        }
        let fleetRouter = FleetRouter(driver: driver.name, members: members, from: from.name, to: to.name,
                                      schedule: StepSchedule(policy: policy))
        return (fleetRouter, fleetRouter)
    }
}

/// The settings `driver` made, as its own type: `.invalidConfiguration` when they are another
/// driver's (a `LoadBalancerSpec` built in code with a mismatched pair).
func driverSettings<Spec: DriverSpec>(_ settings: any DriverSpec, as type: Spec.Type, driver: String) throws -> Spec {
    guard let typed = settings as? Spec else {
        throw LoadBalancerError(.invalidConfiguration, driver: driver, address: "-",
                                message: "the policy's load-balancer settings are not \(driver)'s (\(Swift.type(of: settings)))")
    }
    return typed
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
    if let server = sharedServers(from.servers, to.servers).first {
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
