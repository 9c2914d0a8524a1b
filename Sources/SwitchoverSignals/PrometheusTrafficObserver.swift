import Foundation
import SwitchoverCore
import SwitchoverDrivers

/// Per-cluster counters from Prometheus (`traffic.prometheus`), for a router that counts
/// nothing (Route53, an ALB) or in place of a load balancer's own counters.
///
/// Every sample asks, for FROM and for TO, the policy's `requests` and `errors` queries (and
/// `activeSessions` when given) with `$cluster` replaced by the cluster's name: instant queries,
/// all at once, each with a deadline shorter than the sampling period, so that a slow Prometheus
/// costs one sample and never delays the next. Any query that fails fails the whole sample: the
/// engine then gets no sample that turn, as when a load balancer does not answer. A query that
/// Prometheus answers with an empty vector is 0 for that cluster (no series yet: nothing counted);
/// a failure is never read as 0.
///
/// With several services (`services`, the policy's `spec.loadBalancer.services`), every query
/// also has `$service` replaced, for each service and cluster at once: the sample then carries
/// each service's counters (its gates and the hard signal judge it alone), and each cluster's are
/// the sum of its services'.
///
/// Counters that go backwards (an Envoy or exporter restarted, seen through `sum`) are handled
/// where a load-balancer instance's restart is: the stats carry one instance, `prometheus`, and
/// `LoadBalancerSample.rebased(onto:)` in the engine adds the new total as counted from 0
/// instead of a negative difference (as PromQL's own `increase` does for one series).
public struct PrometheusTrafficObserver: TrafficObserver {
    public let spec: PrometheusTraffic
    public let from: String
    public let to: String
    public let client: PrometheusQuerying
    /// The policy's services; nil or empty: one service, counted per cluster.
    public let services: [String]?

    /// The instance name the counters are kept under in a sample (see the type's comment).
    public static let instance = "prometheus"

    /// `client`'s timeout is each query's deadline: shorter than the sampling period
    /// (`deadline(sampling:)`).
    public init(spec: PrometheusTraffic, from: String, to: String, client: PrometheusQuerying, services: [String]? = nil) {
        self.spec = spec
        self.from = from
        self.to = to
        self.client = client
        self.services = services
    }

    /// Each query's deadline for a sampling period: four fifths of it (the sample's other read,
    /// the router's weights, goes out at the same time), at most 2 s as for a gate.
    public static func deadline(sampling: Duration) -> Duration {
        min(.seconds(2), sampling * 4 / 5)
    }

    /// One cluster's counters as Prometheus reported them.
    struct Counts: Sendable {
        var requests: Double
        var errors: Double
        var active: Double?
    }

    public func stats() async throws -> LoadBalancerStats {
        let takenAt = Date()
        let identity = LoadBalancerIdentity(instance: Self.instance, uptime: .zero, generation: nil)
        if let services, !services.isEmpty {
            return try await perService(services, identity: identity, takenAt: takenAt)
        }
        async let fromCounts = counts(cluster: from)
        async let toCounts = counts(cluster: to)
        let (blue, green) = try await (fromCounts, toCounts)
        var clusters: [String: ClusterStats] = [:]
        for (name, counts) in [(from, blue), (to, green)] {
            clusters[name] = Self.clusterStats(name, counts)
        }
        var stats = LoadBalancerStats(clusters: clusters, identity: identity, takenAt: takenAt)
        // One instance, so that the engine rebases a total that went down (a counter reset)
        // instead of taking the difference.
        stats.instances = [Self.instance: LoadBalancerStats(clusters: clusters, identity: identity, takenAt: takenAt)]
        return stats
    }

    /// Every service's counters for FROM and TO, asked all at once; each cluster's are the sum
    /// of its services'.
    private func perService(_ services: [String], identity: LoadBalancerIdentity, takenAt: Date) async throws -> LoadBalancerStats {
        let answers = try await withThrowingTaskGroup(of: (String, String, Counts).self) { group in
            for service in services {
                for cluster in [from, to] {
                    group.addTask { (service, cluster, try await counts(cluster: cluster, service: service)) }
                }
            }
            var answers: [(String, String, Counts)] = []
            for try await answer in group { answers.append(answer) }
            return answers
        }
        var byService: [String: [String: ClusterStats]] = [:]
        var clusters: [String: ClusterStats] = [:]
        for (service, cluster, counts) in answers {
            let stats = Self.clusterStats(cluster, counts)
            byService[service, default: [:]][cluster] = stats
            clusters[cluster] = clusters[cluster].map { FleetRouter.sum($0, stats) } ?? stats
        }
        var stats = LoadBalancerStats(clusters: clusters, identity: identity, takenAt: takenAt)
        stats.services = byService
        // One instance, as above, holding each service's counters for the engine to rebase.
        var instance = LoadBalancerStats(clusters: clusters, identity: identity, takenAt: takenAt)
        instance.services = byService
        stats.instances = [Self.instance: instance]
        return stats
    }

    /// `requests`, `errors` and `activeSessions` of one cluster (and service), asked at once.
    func counts(cluster: String, service: String? = nil) async throws -> Counts {
        async let requests = value(spec.requests, cluster: cluster, service: service)
        async let errors = value(spec.errors, cluster: cluster, service: service)
        async let active = optionalValue(spec.activeSessions, cluster: cluster, service: service)
        return try await Counts(requests: requests, errors: errors, active: active)
    }

    func optionalValue(_ template: String?, cluster: String, service: String? = nil) async throws -> Double? {
        guard let template else { return nil }
        return try await value(template, cluster: cluster, service: service)
    }

    /// The query's single value for `cluster`: 0 for an empty vector (Prometheus answered, and no
    /// series matched: nothing counted yet); an error for several series (the query must sum
    /// them: which one is the cluster's?) and for NaN or infinity (not a count).
    func value(_ template: String, cluster: String, service: String? = nil) async throws -> Double {
        let query = PrometheusTraffic.query(template, cluster: cluster, service: service)
        let values = try await client.query(base: spec.url, query)
        guard let value = values.first else { return 0 }
        guard values.count == 1 else {
            throw PrometheusError(.badResponse, base: spec.url,
                                  detail: "'\(query)' returned \(values.count) series for cluster \(cluster); a traffic query must return one (sum it)")
        }
        guard value.isFinite, value >= 0 else {
            throw PrometheusError(.badResponse, base: spec.url, detail: "'\(query)' returned \(value) for cluster \(cluster); a count is finite and not negative")
        }
        return value
    }

    /// Requests are both the responses and the sessions of the window (new traffic restarts the
    /// drain's hold); what is not a 5xx counts as 2xx (Prometheus's queries do not split the
    /// other classes). Errors above requests (two queries, two moments) are capped at requests.
    static func clusterStats(_ name: String, _ counts: Counts) -> ClusterStats {
        let requests = Int(counts.requests.rounded())
        let errors = min(Int(counts.errors.rounded()), requests)
        return ClusterStats(cluster: name, activeSessions: Int((counts.active ?? 0).rounded()), totalSessions: requests,
                            totalRequests: requests, responses2xx: requests - errors, responses5xx: errors, responsesOther: 0,
                            meanResponseTime: nil, servers: [])
    }
}
