import Foundation
import SwitchoverCore
import SwitchoverDrivers

/// Takes one `LoadBalancerSample`: the observer's `stats()` counters per cluster, plus the
/// live weights (summed per cluster) that counters do not carry, read from the router in the
/// same breath. The runtime calls it every `policy.sampling` (250 ms by default); the hard
/// signal and the `loadBalancer` gates are judged on the differences between samples.
///
/// Router and observer are one object for HAProxy and Envoy; for a router that counts nothing
/// (DNS, a cloud load balancer) the observer is another source.
///
/// Throws what the driver throws: a sample that could not be taken is not a sample of zeros.
public struct LoadBalancerSampler: Sendable {
    public let router: any WeightRouter
    public let observer: any TrafficObserver
    /// The last live weights read, for `WeightsUnread`'s sample.
    private let lastLive = LastReading()

    public init(router: any WeightRouter, observer: any TrafficObserver) {
        self.router = router
        self.observer = observer
    }

    /// The counters were read but the live weights were not: a router that is not its own
    /// observer (Route53, an ALB, any router with `traffic.prometheus`) failed while the
    /// observer answered. `sample` holds the counters, with the weights last read (none before
    /// the first read), so the hard signal and the gates, which judge counters, need not go
    /// blind while the router's API is down; `cause` is the router's error.
    public struct WeightsUnread: Error, CustomStringConvertible {
        public let sample: LoadBalancerSample
        public let cause: any Error
        public var description: String { "\(cause)" }
    }

    private final class LastReading: @unchecked Sendable {
        private let lock = NSLock()
        private var live: LiveWeights?
        func set(_ value: LiveWeights) { lock.withLock { live = value } }
        func get() -> LiveWeights? { lock.withLock { live } }
    }

    public func sample(at now: Instant) async throws -> LoadBalancerSample {
        try await sampleWithWeights(at: now).sample
    }

    /// The sample with the live weights, read in the same breath (with the driver's drift since
    /// its last write, which the engine compares with the journal). The two reads go out at
    /// once: they are independent round trips (HAProxy opens a connection per command), and
    /// this runs every sampling period. A fleet that is its own observer reads both in one go
    /// (`FleetRouter.readWeightsAndStats`: one read per HAProxy instance for all its services).
    public func sampleWithWeights(at now: Instant) async throws -> (sample: LoadBalancerSample, live: LiveWeights) {
        let stats: LoadBalancerStats, live: LiveWeights
        if let fleet = router as? FleetRouter, let same = observer as? FleetRouter, same === fleet {
            (stats, live) = try await fleet.readWeightsAndStats()
        } else {
            async let statsRead = observer.stats()
            async let liveRead = Self.result { try await router.sampledWeights() }
            stats = try await statsRead
            switch await liveRead {
            case .success(let read):
                live = read
                lastLive.set(read)
            case .failure(let error):
                // One object that both routes and counts failed as a whole: no counters to trust.
                if (router as AnyObject) === (observer as AnyObject) { throw error }
                let sample = lastLive.get().map { assemble(stats, $0, at: now) }
                    ?? Self.sample(stats, weights: [:], at: now)
                throw WeightsUnread(sample: sample, cause: error)
            }
        }
        return (assemble(stats, live, at: now), live)
    }

    private static func result<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
        do { return .success(try await body()) } catch { return .failure(error) }
    }

    /// The engine's sample from `stats` with the weights of `live`.
    private func assemble(_ stats: LoadBalancerStats, _ live: LiveWeights, at now: Instant) -> LoadBalancerSample {
        let from = router.fromCluster.cluster, to = router.toCluster.cluster
        var weights = [from: live.assignment.fromTotal, to: live.assignment.toTotal]
        if let members = live.members {
            // Several instances: FROM's weight is the most any instance gives it (one instance
            // still sending to FROM keeps it from being drained), TO's the least.
            let perInstance = Dictionary(grouping: members, by: \.instance).values
            weights[from] = perInstance.map { $0.reduce(0) { $0 + $1.assignment.fromTotal } }.max() ?? 0
            weights[to] = perInstance.map { $0.reduce(0) { $0 + $1.assignment.toTotal } }.min() ?? 0
        }
        var sample = Self.sample(stats, weights: weights, at: now)
        if let services = stats.services {
            // Per service, with the weights its members hold, by the same rule as the whole:
            // FROM's the most any instance gives it, TO's the least.
            var perService: [String: [String: ClusterCounters]] = [:]
            for (service, clusters) in services {
                let held = (live.members ?? []).filter { $0.service == service }.map(\.assignment)
                let serviceWeights = [from: held.map(\.fromTotal).max() ?? 0, to: held.map(\.toTotal).min() ?? 0]
                perService[service] = Self.sample(LoadBalancerStats(clusters: clusters, identity: stats.identity, takenAt: stats.takenAt),
                                                  weights: serviceWeights, at: now).clusters
            }
            sample.services = perService
        }
        sample.missing = stats.missing
        sample.recordTTL = live.recordTTL
        if let instances = stats.instances {
            sample.instances = instances.mapValues { instance in
                // With services, an instance's cluster totals are the sum of its services'
                // (`InstanceCounters.counters`): not kept twice in every state snapshot.
                InstanceCounters(process: instance.identity.instance,
                                 clusters: instance.services == nil ? Self.sample(instance, weights: [:], at: now).clusters : [:],
                                 services: instance.services?.mapValues { clusters in
                                     Self.sample(LoadBalancerStats(clusters: clusters, identity: instance.identity, takenAt: instance.takenAt),
                                                 weights: [:], at: now).clusters
                                 })
            }
        }
        return sample
    }

    /// The engine's view of a read of the live weights: TO's share, each side's total, the
    /// instance that answered (its start time from its uptime), the driver's own drift, and
    /// whether FROM's servers are in drain where the load balancer has a drain state.
    public static func reading(_ live: LiveWeights, router: any WeightRouter, at now: Instant) -> LiveWeightsReading {
        let fromInDrain = live.inDrain.map { inDrain in router.fromCluster.servers.allSatisfy(inDrain.contains) }
        return LiveWeightsReading(at: now, percentToTarget: live.effectivePercentToTarget,
                                  fromWeight: live.assignment.fromTotal, toWeight: live.assignment.toTotal,
                                  instance: live.instance, drift: live.drift.map(\.description) + live.disagreements,
                                  fromInDrain: fromInDrain, unreachable: live.unreachable)
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
