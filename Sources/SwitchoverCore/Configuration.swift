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
    /// that do), and gates that watch a cluster taking no part in this switchover.
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
            let shared = Set(fromCluster.loadBalancer.servers).intersection(toCluster.loadBalancer.servers)
            if !shared.isEmpty {
                diagnostics.append(Diagnostic(location: toCluster.location,
                    message: "clusters '\(from)' and '\(to)' share load-balancer servers \(list(shared.sorted())); their weights cannot be set apart"))
            }
        }
        return diagnostics.sorted()
    }
}
