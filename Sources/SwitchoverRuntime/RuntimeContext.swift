import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverNet
import SwitchoverSignals

/// What every runtime operation gets from the command line: where the journal is, the
/// configuration as loaded (with the problems found in its files), and a logger. The runtime
/// builds everything else from it (journal, lease, driver, signal sources, coordinator); the
/// command line only parses, calls and prints.
public struct RuntimeContext: Sendable {
    public var state: StateLocation
    public var configuration: Configuration
    /// Problems of the configuration's files: any of them refuses every command that acts.
    public var problems: [Diagnostic]
    public var logger: Logger

    public init(state: StateLocation, configuration: Configuration, problems: [Diagnostic], logger: Logger) {
        self.state = state
        self.configuration = configuration
        self.problems = problems
        self.logger = logger
    }

    /// FROM, TO and the policy, or `ConfigurationRefused` with every problem (those of any file,
    /// and those of this pair): bad input changes nothing.
    public func pair(from: String, to: String, policy: String) throws -> (from: Cluster, to: Cluster, policy: Policy) {
        let all = (problems + configuration.validatePair(from: from, to: to, policy: policy)).sorted()
        guard all.isEmpty, let fromCluster = configuration.cluster(named: from), let toCluster = configuration.cluster(named: to),
              let chosen = configuration.policy(named: policy) else {
            throw ConfigurationRefused(diagnostics: all)
        }
        return (fromCluster, toCluster, chosen)
    }

    /// As `pair`, for the commands that only bring a journaled run's traffic back or record its
    /// end (`rollback`, `decommission`): only problems in the files that define FROM, TO and the
    /// policy refuse (and this pair's own). A typo in another team's policy, being edited while
    /// this run needs its emergency exit, must not block it. When one of the three cannot be
    /// read at all, every problem refuses, as in `pair`.
    public func journaledPair(from: String, to: String, policy: String) throws -> (from: Cluster, to: Cluster, policy: Policy) {
        guard let fromCluster = configuration.cluster(named: from), let toCluster = configuration.cluster(named: to),
              let chosen = configuration.policy(named: policy) else {
            return try pair(from: from, to: to, policy: policy)
        }
        let own: Set<String> = [fromCluster.location.file, toCluster.location.file, chosen.location.file]
        let relevant = (problems.filter { own.contains($0.location.file) }
                        + configuration.validatePair(from: from, to: to, policy: policy)).sorted()
        guard relevant.isEmpty else { throw ConfigurationRefused(diagnostics: relevant) }
        return (fromCluster, toCluster, chosen)
    }

    /// The router and observer the policy's driver makes, bound to FROM and TO: the one place
    /// drivers are made (through the driver registry).
    ///
    /// With the policy's `traffic.prometheus`, the observer is Prometheus's, for every driver:
    /// it replaces HAProxy's or Envoy's own counters, and is the only one a router that counts
    /// nothing (DNS, a cloud load balancer) has.
    public func loadBalancer(policy: Policy, from: Cluster, to: Cluster) throws -> LoadBalancerPair {
        let made = try DriverRegistry.standard.make(policy: policy, from: from, to: to, logger: logger,
                                                    observer: Self.trafficObserver(policy: policy, from: from, to: to, logger: logger))
        return LoadBalancerPair(router: made.router, observer: made.observer)
    }

    /// The observer of the policy's `traffic` section, nil without one. Each query's deadline is
    /// shorter than the sampling period, so a slow Prometheus costs one sample, never the next.
    static func trafficObserver(policy: Policy, from: Cluster, to: Cluster, logger: Logger) -> (any TrafficObserver)? {
        guard let prometheus = policy.traffic?.prometheus else { return nil }
        let deadline = PrometheusTrafficObserver.deadline(sampling: policy.sampling)
        return PrometheusTrafficObserver(spec: prometheus, from: from.name, to: to.name,
                                         client: PrometheusQuerying(client: HTTPClient(logger: logger),
                                                                    connectTimeout: deadline, timeout: deadline),
                                         services: policy.loadBalancer.services)
    }
}

/// What moves a policy's weights and what counts its traffic.
public struct LoadBalancerPair: Sendable {
    public var router: any WeightRouter
    public var observer: any TrafficObserver
}

/// The configuration does not allow the command: every problem, `FILE:LINE:COL: message`.
public struct ConfigurationRefused: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
