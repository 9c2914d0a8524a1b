import Foundation

/// Every cluster and policy read from the configuration folders (DESIGN.md section 3).
///
/// Produced by `ConfigLoader.load`, which keeps what it could read even when some files have
/// problems, so callers decide: `validate` reports, every other command refuses to run unless
/// the diagnostics are empty.
public struct Configuration: Sendable {
    public var clusters: [Cluster]
    public var policies: [Policy]

    public init(clusters: [Cluster], policies: [Policy]) {
        self.clusters = clusters
        self.policies = policies
    }

    public func cluster(named name: String) -> Cluster? {
        clusters.first { $0.name == name }
    }

    public func policy(named name: String) -> Policy? {
        policies.first { $0.name == name }
    }
}

public extension Configuration {
    /// Problems with moving traffic from `from` to `to` under `policy`, beyond those of the files
    /// themselves: the same cluster twice, names that do not exist (the message lists the ones
    /// that do), gates that watch a cluster taking no part in this switchover, and steps these
    /// two clusters' servers turn into 0% to TO (`WeightTranslation.stepsWithNoShare`).
    ///
    /// Problems with the command line's names are located at `Diagnostic.commandLine`, line 0;
    /// problems with the policy at the gate that has them.
    func validatePair(from: String, to: String, policy: String) -> [Diagnostic] {
        let commandLine = SourceLocation(file: Diagnostic.commandLine, line: 0, column: 0)
        var diagnostics: [Diagnostic] = []
        let knownClusters = clusters.map(\.name).sorted()
        let clusterList = knownClusters.isEmpty ? "none are defined" : "known clusters: \(knownClusters.joined(separator: ", "))"
        for (role, name) in [("FROM", from), ("TO", to)] where cluster(named: name) == nil {
            diagnostics.append(Diagnostic(location: commandLine, message: "\(role) names unknown cluster \(quoted(name)); \(clusterList)"))
        }
        if from == to {
            diagnostics.append(Diagnostic(location: commandLine,
                message: "FROM and TO are both \(quoted(from)); a switchover moves traffic between two different clusters"))
        }
        guard let chosen = self.policy(named: policy) else {
            let known = policies.map(\.name).sorted()
            let list = known.isEmpty ? "none are defined" : "known policies: \(known.joined(separator: ", "))"
            diagnostics.append(Diagnostic(location: commandLine, message: "unknown policy \(quoted(policy)); \(list)"))
            return diagnostics
        }
        for gate in chosen.gates {
            if case .loadBalancer(let lb) = gate.source, lb.cluster != from, lb.cluster != to {
                diagnostics.append(Diagnostic(location: gate.location,
                    message: "gate \(quoted(gate.name)) judges cluster '\(lb.cluster)', which is neither FROM ('\(from)') nor TO ('\(to)') of this switchover"))
            }
        }
        if let fromCluster = cluster(named: from), let toCluster = cluster(named: to), from != to {
            // A driver that places each cluster by a section of its own (a Route53 record's set
            // identifier) needs that section in both clusters.
            let driver = chosen.loadBalancer.driver
            if driver.readsClusterSection {
                for cluster in [fromCluster, toCluster] where cluster.loadBalancer.sections[driver.name] == nil {
                    diagnostics.append(Diagnostic(location: cluster.location,
                        message: "policy '\(policy)' drives \(driver.name), and cluster '\(cluster.name)' has no spec.loadBalancer.\(driver.name) section saying where it sits in it"))
                }
                let placed = [fromCluster, toCluster].compactMap { $0.loadBalancer.sections[driver.name]?.spec.server }
                if placed.count == 2, placed[0] == placed[1] {
                    diagnostics.append(Diagnostic(location: toCluster.location,
                        message: "clusters '\(from)' and '\(to)' both sit at \(quoted(placed[0])) in \(driver.name); their weights cannot be set apart"))
                }
                if placed.count < 2 { return diagnostics.sorted() }
            }
            // A policy's services and a cluster's must be the same ones: the loader compares every
            // policy with every cluster that lists services; the pair adds the forms that cannot mix.
            let services = chosen.loadBalancer.services
            for cluster in [fromCluster, toCluster] {
                if let services, cluster.loadBalancer.services == nil {
                    diagnostics.append(Diagnostic(location: cluster.location,
                        message: "policy '\(policy)' moves services \(services.joined(separator: ", ")), and cluster '\(cluster.name)' lists its servers without services; list them under spec.loadBalancer.services"))
                } else if services == nil, cluster.loadBalancer.services != nil {
                    diagnostics.append(Diagnostic(location: cluster.location,
                        message: "cluster '\(cluster.name)' lists its servers by service, and policy '\(policy)' maps no services; add 'services' to the policy's spec.loadBalancer.\(chosen.loadBalancer.driverName)"))
                }
            }
            // Every service's servers together, in either form.
            let shared = sharedServers(fromCluster.loadBalancer.servers, toCluster.loadBalancer.servers)
            if !shared.isEmpty {
                diagnostics.append(Diagnostic(location: toCluster.location,
                    message: "clusters '\(from)' and '\(to)' share load-balancer servers \(list(shared)); their weights cannot be set apart"))
            }
            if let services {
                // Each service's backend is a pair of its own: a step must be expressible in each
                // (a service a cluster does not list is the loader's problem).
                let translation = chosen.loadBalancer.weightTranslation
                for service in services {
                    guard let f = fromCluster.loadBalancer.servers(of: service), let t = toCluster.loadBalancer.servers(of: service),
                          !f.isEmpty, !t.isEmpty else { continue }
                    for step in translation.stepsWithNoShare(chosen.steps, from: f, to: t) {
                        diagnostics.append(Diagnostic(location: chosen.stepLocation(step.index),
                            message: "step \(formatNumber(step.percent)) sends no traffic to '\(to)' in service '\(service)' with its servers (\(f.count) on '\(from)', \(t.count) on '\(to)'), so no gate on it could pass; make the step larger"))
                    }
                }
                return diagnostics.sorted()
            }
            let translation = chosen.loadBalancer.weightTranslation
            let fromServers = fromCluster.loadBalancer.servers(for: driver), toServers = toCluster.loadBalancer.servers(for: driver)
            let smallest = translation.smallestShare(from: fromServers, to: toServers)
            // Steps no pair at all can express are the loader's problems already (`validate`).
            let everywhere = Set(stepsNoPairCanExpress(chosen).map(\.location))
            for step in translation.stepsWithNoShare(chosen.steps, from: fromServers, to: toServers)
            where !everywhere.contains(chosen.stepLocation(step.index)) {
                diagnostics.append(Diagnostic(location: chosen.stepLocation(step.index),
                    message: "step \(formatNumber(step.percent)) sends no traffic to '\(to)' with these servers, so no gate on it could pass: "
                        + "the smallest share \(describe(fromCluster, to: toCluster, smallest, chosen)); make the step at least that"))
            }
        }
        return diagnostics.sorted()
    }

    /// For `validate`, which has no pair: steps of `policy` that every two distinct clusters
    /// defined would turn into 0% to TO. (A step only some pairs cannot express is reported by
    /// `validatePair`, when the pair is known: `plan`, `run`.)
    func stepsNoPairCanExpress(_ policy: Policy) -> [Diagnostic] {
        guard clusters.count >= 2 else { return [] }
        let translation = policy.loadBalancer.weightTranslation
        // The translation depends on the number of servers only: one pair per shape.
        var pairs: [String: (from: Cluster, to: Cluster)] = [:]
        for from in clusters {
            for to in clusters where to.name != from.name {
                pairs["\(from.loadBalancer.servers.count)/\(to.loadBalancer.servers.count)"] = pairs["\(from.loadBalancer.servers.count)/\(to.loadBalancer.servers.count)"] ?? (from, to)
            }
        }
        var unexpressible: Set<Int>?
        var finest: (from: Cluster, to: Cluster, share: WeightAssignment)?
        for (from, to) in pairs.values {
            let steps = Set(translation.stepsWithNoShare(policy.steps, from: from.loadBalancer.servers,
                                                         to: to.loadBalancer.servers).map(\.index))
            unexpressible = unexpressible.map { $0.intersection(steps) } ?? steps
            let share = translation.smallestShare(from: from.loadBalancer.servers, to: to.loadBalancer.servers)
            if finest == nil || share.effectivePercentToTarget < finest!.share.effectivePercentToTarget
                || (share.effectivePercentToTarget == finest!.share.effectivePercentToTarget && (from.name, to.name) < (finest!.from.name, finest!.to.name)) {
                finest = (from, to, share)
            }
        }
        guard let unexpressible, let finest else { return [] }
        return unexpressible.sorted().map { index in
            Diagnostic(location: policy.stepLocation(index),
                       message: "step \(formatNumber(policy.steps[index])) sends no traffic to TO with any two of the clusters defined, so no gate on TO could pass: "
                           + "the finest pair is '\(finest.from.name)' -> '\(finest.to.name)', and the smallest share \(describe(finest.from, to: finest.to, finest.share, policy)); make the step at least that")
        }
    }

    /// "'blue' (2 servers) can give 'green' (2 servers) is 0.389% (green 1 per server, blue 256
    /// per server; haproxy weights 0-256)".
    private func describe(_ from: Cluster, to: Cluster, _ share: WeightAssignment, _ policy: Policy) -> String {
        func servers(_ cluster: Cluster) -> String {
            "\(cluster.loadBalancer.servers.count) server\(cluster.loadBalancer.servers.count == 1 ? "" : "s")"
        }
        let percent = String(format: "%.3g", share.effectivePercentToTarget)
        let maxWeight = policy.loadBalancer.weightTranslation.maxWeight
        return "'\(from.name)' (\(servers(from))) can give '\(to.name)' (\(servers(to))) is \(percent)% "
            + "(\(to.name) 1 per server, \(from.name) \(maxWeight) per server; \(policy.loadBalancer.driverName) weights 0-\(maxWeight))"
    }
}

extension Policy {
    /// Where step `index` is written, or the policy when that is not known.
    func stepLocation(_ index: Int) -> SourceLocation {
        stepLocations.indices.contains(index) ? stepLocations[index] : location
    }
}

/// Servers named by both clusters, sorted: their weights cannot be set apart. The one check of
/// it, for `validatePair` and for the driver registry (a policy built without the loader).
public func sharedServers(_ from: [String], _ to: [String]) -> [String] {
    Set(from).intersection(to).sorted()
}
