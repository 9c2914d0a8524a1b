import Foundation

/// What counts the traffic each cluster gets: requests, 5xx, open sessions, response time, and
/// which running instance counted them (a counter that restarted went back to 0). The gates, the
/// hard signal and the drain detector judge blue and green on these counters.
///
/// Separate from moving weights (`WeightRouter`): HAProxy and Envoy do both (one object is
/// both), but a DNS record or a cloud load balancer moves weights and counts nothing, and
/// Prometheus counts and moves nothing; a policy may pair a router with another observer.
/// Bound to FROM and TO when it is made, like the router.
public protocol TrafficObserver: Sendable {
    /// Per-cluster counters and health for FROM and TO, read now. What each field means differs
    /// per driver; see the driver's documentation.
    func stats() async throws -> LoadBalancerStats
}

/// A server's health as the load balancer sees it.
public struct ServerHealth: Sendable, Hashable, Codable {
    public var server: String
    /// The load balancer's own word: HAProxy `status` (`UP`, `DOWN`, `DRAIN`, `MAINT`, `no check`);
    /// Envoy: `healthy` or the failed health flags from `/clusters`.
    public var status: String
    /// False when the load balancer will not send new requests to it (down, maintenance,
    /// draining, failed health check).
    public var serving: Bool
    public init(server: String, status: String, serving: Bool) {
        self.server = server
        self.status = status
        self.serving = serving
    }
}

/// One cluster's counters. Counters only grow while the load balancer lives; a gate works on
/// the difference between two samples (and must treat a decrease as a restart).
public struct ClusterStats: Sendable, Hashable, Codable {
    public var cluster: String
    /// What holds the cluster now, for the drain: HAProxy `scur` (streams: requests in flight and
    /// tunnels, not idle keep-alive connections); Envoy `upstream_rq_active` +
    /// `upstream_rq_pending_active` (requests in flight, not its idle pooled connections).
    public var activeSessions: Int
    /// Grows when new traffic reaches the cluster: HAProxy `stot` (sessions so far); Envoy
    /// `upstream_rq_total` (requests so far; a new pooled connection does not move it).
    public var totalSessions: Int
    /// Requests answered so far (HAProxy: sum of `hrsp_*`; Envoy `upstream_rq_completed`).
    public var totalRequests: Int
    public var responses2xx: Int
    public var responses5xx: Int
    /// Every other class (1xx, 3xx, 4xx, and HAProxy's `hrsp_other`).
    public var responsesOther: Int
    /// HAProxy: `rtime`, the mean over the last 1024 requests; Envoy: the mean of the
    /// `upstream_rq_time` histogram since start. nil when nothing has been answered.
    public var meanResponseTime: Duration?
    public var servers: [ServerHealth]

    public init(cluster: String, activeSessions: Int, totalSessions: Int, totalRequests: Int,
                responses2xx: Int, responses5xx: Int, responsesOther: Int, meanResponseTime: Duration?,
                servers: [ServerHealth]) {
        self.cluster = cluster
        self.activeSessions = activeSessions
        self.totalSessions = totalSessions
        self.totalRequests = totalRequests
        self.responses2xx = responses2xx
        self.responses5xx = responses5xx
        self.responsesOther = responsesOther
        self.meanResponseTime = meanResponseTime
        self.servers = servers
    }
}

/// A sample of the load balancer's counters for FROM and TO.
public struct LoadBalancerStats: Sendable, Hashable, Codable {
    /// By cluster name.
    public var clusters: [String: ClusterStats]
    public var identity: LoadBalancerIdentity
    public var takenAt: Date
    /// Several services (`FleetRouter`): per service, by cluster name; nil otherwise.
    public var services: [String: [String: ClusterStats]]?
    /// Instances that did not answer (their counters are left out), naming each and why; nil
    /// when every one answered.
    public var missing: [String]?
    /// Several instances: each one's own counters (per cluster and per service), by instance
    /// name; nil otherwise.
    public var instances: [String: LoadBalancerStats]?
    public init(clusters: [String: ClusterStats], identity: LoadBalancerIdentity, takenAt: Date) {
        self.clusters = clusters
        self.identity = identity
        self.takenAt = takenAt
    }
}

