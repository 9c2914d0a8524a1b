import Foundation
import Logging
import SwitchoverCore

/// What moves traffic between blue and green: the load balancer's (or DNS record's) weights,
/// as the coordinator sets and reads them. Counting the traffic is another job
/// (`TrafficObserver`): a DNS record or a cloud load balancer moves weights but counts nothing.
///
/// Every write is verified: `apply` writes the weights, reads them back from the load balancer
/// itself and throws when what is live differs from what was intended. A weight the coordinator
/// believes it set but the data plane never applied is the worst bug Switchover can have (the
/// dashboard says 10% while 100% flows), so no method here answers from a cache.
///
/// A router is bound to one pair of clusters (FROM and TO) when it is made: it knows which
/// servers belong to which cluster, so it can report per-cluster shares and refuse a weight for
/// a server that belongs to neither. `DriverRegistry.make` builds the one a policy names.
public protocol WeightRouter: Sendable {
    /// The driver's name as written in a policy: `haproxy`, `envoy`.
    var driver: String { get }
    /// Where the driver talks to the load balancer (socket path, `tcp://host:port`, admin URL),
    /// for messages.
    var address: String { get }
    /// The translation from a percentage to this load balancer's integer weights: the same code
    /// `switchover plan` shows, with this load balancer's range (its driver's description's).
    var translation: WeightTranslation { get }
    /// What it can do besides weights (its driver's description's): ask before calling
    /// `setDrain`, `setReady` or `shutdownSessions`, which throw `.unsupported` otherwise.
    var capabilities: RouterCapabilities { get }
    /// FROM's and TO's servers in the load balancer (HAProxy servers, Envoy cluster names).
    var fromCluster: ClusterServers { get }
    var toCluster: ClusterServers { get }

    /// The weights the load balancer holds now, read from it, with the identity of the running
    /// instance and what changed behind the driver's back since the driver last looked.
    func currentWeights() async throws -> LiveWeights

    /// The weights for the sampling loop, which asks every sampling period: `currentWeights()`
    /// by default. A router whose API has an account-wide rate limit (Route53, ALB) answers from
    /// its latest reading, refreshed in the background at most once per its `readEvery`
    /// (`PacedReads`); `LiveWeights.readAt` says when it was read.
    func sampledWeights() async throws -> LiveWeights
    /// How old a `sampledWeights()` reading may be in normal operation; nil: read with the sample.
    var readingMaxAge: Duration? { get }

    /// Writes every server's weight, then reads them back. Throws `LoadBalancerError` with code
    /// `.readBackMismatch` naming the server, the intended and the live value when they differ;
    /// `.unknownServer` when a server is not in the load balancer (nothing is written then).
    @discardableResult
    func apply(_ assignment: WeightAssignment) async throws -> LiveWeights

    /// Writes the weights of `percentToTarget` (translated with `translation`) and reads them
    /// back. `step` is the engine's step they belong to: with several services in waves
    /// (`FleetRouter`), the step says which service is at which percentage; a single load
    /// balancer needs only the percentage. Without a step, every service gets the percentage.
    @discardableResult
    func apply(percentToTarget: Double, step: Int?) async throws -> LiveWeights

    /// TO's share, in percent, that the live weights read back as once `apply(percentToTarget:
    /// step:)` is in place (after translation to integers): what a read-back is checked against.
    func plannedPercent(percentToTarget: Double, step: Int?) -> Double

    /// Stops new sessions to `cluster`'s servers while letting open ones finish (capability
    /// `.drain`). Throws `.unsupported` where the load balancer has no such notion (Envoy: its
    /// verified weight 0 is what stops new requests).
    func setDrain(cluster: String) async throws
    /// Undoes `setDrain` (capability `.ready`). Throws `.unsupported` otherwise.
    func setReady(cluster: String) async throws
    /// Closes every session still open to `cluster`'s servers (capability `.shutdownSessions`;
    /// policy `drain.forceAfter`: the drain's deadline passed and the person chose cut
    /// connections over waiting). Throws `.unsupported` otherwise.
    func shutdownSessions(cluster: String) async throws

    /// The driver's own preflight checks (read-only), each failure one sentence: a Route53
    /// record that external-dns owns and would write over. Empty when all pass.
    func preflight() async -> [String]
}

extension WeightRouter {
    public func sampledWeights() async throws -> LiveWeights { try await currentWeights() }
    public var readingMaxAge: Duration? { nil }

    /// Most drivers have nothing to check beyond reading the weights.
    public func preflight() async -> [String] { [] }

    /// No drain state unless the driver has one: say so rather than pretend.
    public func setDrain(cluster: String) async throws {
        try unsupported(.drain, cluster: cluster)
    }

    public func setReady(cluster: String) async throws {
        try unsupported(.ready, cluster: cluster)
    }

    /// Most load balancers cannot close sessions on demand.
    public func shutdownSessions(cluster: String) async throws {
        try unsupported(.shutdownSessions, cluster: cluster, why: "they end on their own")
    }

    private func unsupported(_ capability: RouterCapabilities, cluster: String, why: String? = nil) throws {
        _ = try servers(ofCluster: cluster)
        throw LoadBalancerError(.unsupported, driver: driver, address: address,
                                message: "\(driver) cannot \(capability)" + (why.map { "; \($0)" } ?? ""))
    }

    /// Translates `percentToTarget` with this load balancer's translation and applies it.
    @discardableResult
    public func apply(percentToTarget: Double, step: Int?) async throws -> LiveWeights {
        try await apply(translation.weights(percentToTarget: percentToTarget,
                                            from: fromCluster.servers, to: toCluster.servers))
    }

    public func plannedPercent(percentToTarget: Double, step: Int?) -> Double {
        translation.weights(percentToTarget: percentToTarget, from: fromCluster.servers, to: toCluster.servers)
            .effectivePercentToTarget
    }

    /// `percentToTarget` for every service (0: rollback; 100: everything on TO).
    @discardableResult
    public func apply(percentToTarget: Double) async throws -> LiveWeights {
        try await apply(percentToTarget: percentToTarget, step: nil)
    }

    /// The servers of the cluster named `name` (FROM or TO), or `.unknownCluster`.
    func servers(ofCluster name: String) throws -> ClusterServers {
        if name == fromCluster.cluster { return fromCluster }
        if name == toCluster.cluster { return toCluster }
        throw LoadBalancerError(.unknownCluster, driver: driver, address: address,
                                message: "cluster '\(name)' is neither FROM ('\(fromCluster.cluster)') nor TO ('\(toCluster.cluster)')")
    }
}

/// A cluster's name and its servers in the load balancer, in order.
public struct ClusterServers: Sendable, Hashable, Codable {
    public var cluster: String
    public var servers: [String]
    /// The cluster's own section for the driver (`route53: {setIdentifier, value}`), for drivers
    /// that place a cluster by one (`DriverDescription.readsClusterSection`); not encoded.
    public var section: ClusterSection?
    public init(cluster: String, servers: [String], section: ClusterSection? = nil) {
        self.cluster = cluster
        self.servers = servers
        self.section = section
    }
    private enum CodingKeys: String, CodingKey { case cluster, servers }
}

/// Which running instance of the load balancer answered. Two reads with different identities
/// mean it restarted in between (and forgot every runtime weight, for HAProxy).
public struct LoadBalancerIdentity: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The process: HAProxy's `Pid` from `show info`; Envoy's `/server_info` `node.id` plus
    /// hot-restart epoch.
    public var instance: String
    /// How long the instance has been up, as it said; it only grows while the instance lives.
    public var uptime: Duration
    /// A configuration generation where the load balancer has one: Envoy's route
    /// `version_info`; nil for HAProxy (its runtime weights have no version).
    public var generation: String?

    public init(instance: String, uptime: Duration, generation: String?) {
        self.instance = instance
        self.uptime = uptime
        self.generation = generation
    }

    public var description: String {
        "\(instance), up \(uptime)" + (generation.map { ", generation \($0)" } ?? "")
    }
}

/// One server whose live weight is not what the driver last applied.
public struct WeightDrift: Sendable, Hashable, Codable, CustomStringConvertible {
    public var server: String
    /// What the driver last applied and verified.
    public var applied: Int
    /// What the load balancer holds now.
    public var live: Int
    public init(server: String, applied: Int, live: Int) {
        self.server = server
        self.applied = applied
        self.live = live
    }
    public var description: String { "\(server): applied \(applied), live \(live)" }
}

/// The weights a load balancer holds, as read from it.
public struct LiveWeights: Sendable, Hashable, Codable {
    /// FROM's and TO's servers with the weights the load balancer really holds.
    public var assignment: WeightAssignment
    /// Per-server weights from the load balancer's configuration (HAProxy's `srv_iweight`, what
    /// a restart goes back to); nil where the driver cannot tell (Envoy).
    public var configured: [ServerWeight]?
    /// Percent of traffic each cluster gets from these weights, by cluster name.
    public var shares: [String: Double]
    public var identity: LoadBalancerIdentity
    /// Servers whose live weight differs from what this driver last applied (empty when it
    /// has applied nothing yet, or everything is still as applied).
    public var drift: [WeightDrift]
    /// When the weights were read.
    public var readAt: Date
    /// The servers (of FROM and TO) in the load balancer's drain state; nil where it has no
    /// drain state (Envoy).
    public var inDrain: Set<String>?
    /// Several services in waves (`FleetRouter`): TO's share as the mean over services, each
    /// counting once (as `StepSchedule.percent` counts them); nil otherwise.
    public var serviceShare: Double?
    /// Several instances or services: each one's live weights, instance by instance; nil for one
    /// load balancer and one service.
    public var members: [MemberWeights]?
    /// Instances whose weights differ from the first instance's for the same service, as
    /// sentences naming both.
    public var disagreements: [String] = []
    /// Instances that did not answer this read (or answered with an error), as sentences naming
    /// each; the rest of the reading comes from those that did. Empty when every one answered.
    public var unreachable: [String] = []
    /// The TTL of FROM's DNS record, read with the weights (Route53): how long resolvers and
    /// clients may keep FROM's answer after its weight reads 0, which the drain waits at least;
    /// nil for a load balancer that hands out no DNS answers.
    public var recordTTL: Duration?

    public init(assignment: WeightAssignment, configured: [ServerWeight]?, shares: [String: Double],
                identity: LoadBalancerIdentity, drift: [WeightDrift], readAt: Date,
                inDrain: Set<String>? = nil) {
        self.assignment = assignment
        self.configured = configured
        self.shares = shares
        self.identity = identity
        self.drift = drift
        self.readAt = readAt
        self.inDrain = inDrain
    }

    /// The share of traffic, in percent, the live weights send to TO.
    public var effectivePercentToTarget: Double { serviceShare ?? assignment.effectivePercentToTarget }

    /// The process that answered, as the engine compares it with the journaled one
    /// (`LoadBalancerInstance.isRestart`, the one rule for "the load balancer restarted"): its
    /// start time is the read's time minus its uptime.
    public var instance: LoadBalancerInstance {
        let readAt = Instant(millisecondsSinceEpoch: Int64((readAt.timeIntervalSince1970 * 1000).rounded()))
        return LoadBalancerInstance(id: identity.instance, startedAt: readAt - identity.uptime)
    }

    /// Which of `servers` are in the drain state: whatever their weight, they take no new
    /// traffic, so a share read from the weights alone overstates what they get.
    public func inDrain(of servers: [String]) -> [String] {
        guard let inDrain else { return [] }
        return servers.filter(inDrain.contains)
    }
}

/// Shares in percent by cluster from live weights.
func shares(of assignment: WeightAssignment, from: String, to: String) -> [String: Double] {
    let toShare = assignment.effectivePercentToTarget
    let total = assignment.fromTotal + assignment.toTotal
    return [from: total == 0 ? 0 : 100 - toShare, to: toShare]
}

/// What a driver remembers between reads: the weights it last applied and verified. A fresh read
/// is compared with it to tell a weight someone set behind the driver's back from a value the
/// driver set itself. Shared by every driver so that "drift" means the same thing whichever load
/// balancer is in front. (Whether the load balancer restarted is the engine's call, on
/// `LiveWeights.instance`.)
struct ReadBackMemory {
    var applied: [String: Int] = [:]

    /// Records weights the driver applied and read back.
    mutating func remember(applied assignment: WeightAssignment) {
        for server in assignment.all { applied[server.server] = server.weight }
    }

    /// The servers of a fresh read whose weight is not what was applied.
    func drift(_ assignment: WeightAssignment) -> [WeightDrift] {
        assignment.all.compactMap { live -> WeightDrift? in
            guard let applied = applied[live.server], applied != live.weight else { return nil }
            return WeightDrift(server: live.server, applied: applied, live: live.weight)
        }
    }
}

/// A value behind a lock. `@unchecked Sendable`: every access goes through `withLock`.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock(); defer { lock.unlock() }
        return try body(&value)
    }
}
