import Foundation
import SwitchoverCore
import SwitchoverDrivers

/// Takes one `LoadBalancerSample` from the driver: its `stats()` counters per cluster, plus the
/// live weights (summed per cluster) that `stats()` does not carry, read from the load balancer
/// in the same breath. The runtime calls it every `policy.sampling` (250 ms by default); the
/// hard signal and the `loadBalancer` gates are judged on the differences between samples.
///
/// Throws what the driver throws: a sample that could not be taken is not a sample of zeros.
public struct LoadBalancerSampler: Sendable {
    public let loadBalancer: any LoadBalancer
    /// Also read the live weights (one more round trip). The drain detector and `status` use
    /// them; the hard signal does not.
    public var includeWeights: Bool

    public init(loadBalancer: any LoadBalancer, includeWeights: Bool = true) {
        self.loadBalancer = loadBalancer
        self.includeWeights = includeWeights
    }

    public func sample(at now: Instant) async throws -> LoadBalancerSample {
        try await sampleWithWeights(at: now).sample
    }

    /// The sample and, with `includeWeights`, the live weights it read (with the driver's view
    /// of a restart or drift since its last write, which the coordinator reacts to).
    public func sampleWithWeights(at now: Instant) async throws -> (sample: LoadBalancerSample, live: LiveWeights?) {
        let stats = try await loadBalancer.stats()
        var weights: [String: Int] = [:]
        var live: LiveWeights?
        if includeWeights {
            let read = try await loadBalancer.currentWeights()
            weights[loadBalancer.fromCluster.cluster] = read.assignment.fromTotal
            weights[loadBalancer.toCluster.cluster] = read.assignment.toTotal
            live = read
        }
        return (Self.sample(stats, weights: weights, at: now), live)
    }

    /// The engine's view of a read of the live weights: TO's share, each side's total, the
    /// instance that answered (its start time from its uptime), the driver's own drift, and
    /// whether FROM's servers are in drain where the load balancer has a drain state.
    public static func reading(_ live: LiveWeights, loadBalancer: any LoadBalancer, at now: Instant) -> LiveWeightsReading {
        let readAt = Instant(millisecondsSinceEpoch: Int64((live.readAt.timeIntervalSince1970 * 1000).rounded()))
        let instance = LoadBalancerInstance(id: live.identity.instance, startedAt: readAt - live.identity.uptime)
        let fromInDrain = live.inDrain.map { inDrain in loadBalancer.fromCluster.servers.allSatisfy(inDrain.contains) }
        return LiveWeightsReading(at: now, percentToTarget: live.effectivePercentToTarget,
                                  fromWeight: live.assignment.fromTotal, toWeight: live.assignment.toTotal,
                                  instance: instance, drift: live.drift.map(\.description), fromInDrain: fromInDrain)
    }

    /// The engine's view of a driver's statistics. Responses count every class (2xx, 5xx and
    /// the others), as the gates' ratios need.
    public static func sample(_ stats: LoadBalancerStats, weights: [String: Int], at now: Instant) -> LoadBalancerSample {
        var clusters: [String: ClusterCounters] = [:]
        for (name, cluster) in stats.clusters {
            clusters[name] = ClusterCounters(
                responses: Int64(cluster.totalRequests),
                responses2xx: Int64(cluster.responses2xx),
                responses5xx: Int64(cluster.responses5xx),
                sessionsTotal: Int64(cluster.totalSessions),
                activeSessions: cluster.activeSessions,
                weight: weights[name] ?? 0,
                responseTimeTotalMilliseconds: nil,
                responseTimeAverageMilliseconds: cluster.meanResponseTime.map { Double($0.milliseconds) })
        }
        return LoadBalancerSample(at: now, clusters: clusters)
    }
}
