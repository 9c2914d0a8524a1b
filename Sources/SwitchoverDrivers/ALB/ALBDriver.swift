import Foundation
import Logging
import SwitchoverAWS
import SwitchoverCore

/// `driver: alb`: an Application Load Balancer listener whose default action forwards to one
/// target group per cluster, with weights (`ALBRouter`). A router only: the counters come from
/// the policy's `traffic.prometheus`.
///
/// ```yaml
/// # policy spec.loadBalancer
/// driver: alb
/// alb: {listenerArn: arn:aws:elasticloadbalancing:..., region: us-east-1, endpoint: http://127.0.0.1:5000}
///                                      # optional readEvery: 2s (the sampling loop reads the listener at most this often)
/// # cluster spec.loadBalancer
/// alb: {targetGroupArn: arn:aws:elasticloadbalancing:...}
/// ```
public struct ALBDriver: LoadBalancerDriver {
    public init() {}

    public var name: String { "alb" }
    /// ALB target-group weights are 0–999.
    public var translation: WeightTranslation { WeightTranslation(maxWeight: ELBv2Client.weightRange.upperBound) }
    /// Weights only: the ALB's own deregistration delay drains a target, not a target group.
    public var capabilities: RouterCapabilities { [] }
    public var readsClusterSection: Bool { true }
    public var countsTraffic: Bool { false }

    public func limitation(_ capability: RouterCapabilities) -> String {
        "an ALB forward action has no drain state for a target group and cannot close its connections; weight 0 stops new requests"
    }

    public func decodeSection(_ section: ConfigValue) -> (any DriverSpec)? {
        guard let alb = section.mapping(context: "spec.loadBalancer.alb", known: ["listenerArn", "region", "endpoint", "readEvery"]) else { return nil }
        let listener = alb.required("listenerArn").flatMap { decodeARN($0, kind: "listener") }
        let region = alb.required("region")?.nonEmptyString()
        var endpointOK = true
        var endpoint: URL?
        if let value = alb.optional("endpoint") {
            endpoint = value.httpURL()
            endpointOK = endpoint != nil
        }
        let readEvery = decodeReadEvery(alb.optional("readEvery"))
        guard let listener, let region, endpointOK, let readEvery else { return nil }
        return ALBSpec(listenerArn: listener, region: region, endpoint: endpoint?.absoluteString, readEvery: readEvery.value)
    }

    public func decodeClusterSection(_ section: ConfigValue) -> (any ClusterSectionSpec)? {
        guard let alb = section.mapping(context: "spec.loadBalancer.alb", known: ["targetGroupArn"]) else { return nil }
        return alb.required("targetGroupArn").flatMap { decodeARN($0, kind: "targetgroup") }.map(ALBClusterSpec.init)
    }

    /// An ELBv2 ARN of `kind` (`listener`, `targetgroup`): `arn:<partition>:elasticloadbalancing:...:<kind>/...`.
    private func decodeARN(_ value: ConfigValue, kind: String) -> String? {
        guard let text = value.nonEmptyString() else { return nil }
        let parts = text.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "arn", parts[2] == "elasticloadbalancing", parts[5].hasPrefix("\(kind)/") else {
            value.error("'\(value.key)' must be an elasticloadbalancing \(kind) ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:\(kind)/...), got \(ConfigValue.quoted(text))")
            return nil
        }
        return text
    }

    public func make(_ settings: any DriverSpec, from: ClusterServers, to: ClusterServers, logger: Logger) throws
        -> (router: any WeightRouter, observer: (any TrafficObserver)?) {
        let spec = try driverSettings(settings, as: ALBSpec.self, driver: name)
        let client = try awsClient(driver: name, logger: logger)
        return (ALBRouter(spec: spec, from: from, to: to, client: client, logger: logger), nil)
    }
}

/// A policy's `spec.loadBalancer.alb`.
public struct ALBSpec: DriverSpec {
    public var listenerArn: String
    public var region: String
    public var endpoint: String?
    /// As written; nil: `defaultReadEvery`.
    public var readEveryAsWritten: Duration?
    /// How often the sampling loop reads the listener at most (`PacedReads`).
    public var readEvery: Duration { readEveryAsWritten ?? Self.defaultReadEvery }
    /// The ELB API throttles Describe calls per account and region, shared with every other tool.
    public static let defaultReadEvery = Duration.seconds(2)

    public init(listenerArn: String, region: String, endpoint: String? = nil, readEvery: Duration? = nil) {
        self.listenerArn = listenerArn
        self.region = region
        self.endpoint = endpoint
        self.readEveryAsWritten = readEvery
    }
    /// `readEvery` only when written, so fingerprints of policies without it stay as they were.
    public var fingerprint: String {
        "listenerArn=\(listenerArn) region=\(region) endpoint=\(endpoint ?? "-")"
            + (readEveryAsWritten.map { " readEvery=\(formatDuration($0))" } ?? "")
    }
}

/// A cluster's `spec.loadBalancer.alb`: its target group.
public struct ALBClusterSpec: ClusterSectionSpec {
    public var targetGroupArn: String
    public init(targetGroupArn: String) { self.targetGroupArn = targetGroupArn }
    public var server: String { targetGroupArn }
    public var fingerprint: String { "targetGroupArn=\(targetGroupArn)" }
}

extension LoadBalancerSpec {
    /// `driver: alb` with `spec`, for policies built in code.
    public static func alb(_ spec: ALBSpec) -> LoadBalancerSpec {
        LoadBalancerSpec(driver: ALBDriver(), settings: spec)
    }
}

/// Moves traffic between two target groups of an ALB listener's forward action.
///
/// A step is one `ModifyListener` whose single forward action lists both target groups at
/// their new weights, keeping the stickiness as read; a listener whose default actions are not
/// exactly one forward (a redirect, a fixed response, authentication before the forward) is
/// refused rather than flattened into a forward. Read back with `DescribeListeners`. The
/// sampling loop's reads (`sampledWeights`) are paced to one per `readEvery` (`PacedReads`);
/// `currentWeights` and a write's own reads always go to the API.
public final class ALBRouter: WeightRouter {
    public let driver = "alb"
    public let spec: ALBSpec
    public let fromCluster: ClusterServers
    public let toCluster: ClusterServers
    public let translation = ALBDriver().translation
    public var capabilities: RouterCapabilities { [] }
    public var address: String { "\(spec.endpoint ?? "elasticloadbalancing.\(spec.region)") listener \(spec.listenerArn)" }
    private let elb: ELBv2Client
    /// The same client without retries, for the sampling loop's paced reads.
    private let samplingELB: ELBv2Client
    private let reads: PacedReads<[String: Int]>
    private let logger: Logger
    private let memory = Locked(ReadBackMemory())

    public init(spec: ALBSpec, from: ClusterServers, to: ClusterServers, client: AWSClient, logger: Logger) {
        self.spec = spec
        // The cluster's target group is its one "server".
        func placed(_ cluster: ClusterServers) -> ClusterServers {
            guard let group = cluster.section?.spec as? ALBClusterSpec else { return cluster }
            return ClusterServers(cluster: cluster.cluster, servers: [group.targetGroupArn], section: cluster.section)
        }
        self.fromCluster = placed(from)
        self.toCluster = placed(to)
        self.elb = ELBv2Client(client: client, region: spec.region, endpoint: spec.endpoint)
        self.samplingELB = ELBv2Client(client: client.with(retry: .init(maxRetries: 0), requestTimeout: samplingReadTimeout(spec.readEvery)),
                                       region: spec.region, endpoint: spec.endpoint)
        self.reads = PacedReads(every: spec.readEvery)
        self.logger = logger
    }

    /// The listener's single forward action, refused otherwise.
    private func forward(through client: ELBv2Client? = nil) async throws -> (action: ELBv2Action, weights: [String: Int]) {
        let listeners = try await (client ?? elb).describeListeners(listenerArns: [spec.listenerArn])
        guard let listener = listeners.first(where: { $0.arn == spec.listenerArn }) ?? listeners.first else {
            throw LoadBalancerError(.unknownServer, driver: driver, address: address, message: "no listener \(spec.listenerArn)")
        }
        guard listener.defaultActions.count == 1, let action = listener.defaultActions.first, action.type == "forward" else {
            throw LoadBalancerError(.invalidConfiguration, driver: driver, address: address,
                                    message: "the listener's default actions are \(listener.defaultActions.map(\.type).joined(separator: ", ")), not a single forward; Switchover replaces only a single forward action")
        }
        let groups = action.targetGroups.isEmpty ? action.targetGroupArn.map { [ELBv2WeightedTargetGroup(arn: $0, weight: nil)] } ?? [] : action.targetGroups
        // A target group without a weight in a forward config is weight 1, as AWS documents it;
        // a forward to one group (TargetGroupArn) sends it everything.
        let weights = Dictionary(groups.map { ($0.arn, $0.weight ?? 1) }, uniquingKeysWith: { a, _ in a })
        for cluster in [fromCluster, toCluster] where weights[cluster.servers[0]] == nil {
            throw LoadBalancerError(.unknownServer, driver: driver, address: address, server: cluster.servers[0],
                                    message: "the listener does not forward to cluster '\(cluster.cluster)''s target group \(cluster.servers[0])")
        }
        if let other = weights.keys.sorted().first(where: { ![fromCluster.servers[0], toCluster.servers[0]].contains($0) }) {
            throw LoadBalancerError(.invalidConfiguration, driver: driver, address: address, server: other,
                                    message: "the listener also forwards to target group \(other), which is neither cluster's; Switchover would drop it")
        }
        return (action, weights)
    }

    /// The listener's weights as the ALB holds them now (the client retries a throttled read).
    public func currentWeights() async throws -> LiveWeights {
        let sent = Date()
        let weights = try await forward().weights
        reads.remember(weights, sent: sent)
        return live(weights, readAt: sent)
    }

    /// The listener's weights as last read, read again in the background at most every
    /// `readEvery`, without retries (`PacedReads`).
    public func sampledWeights() async throws -> LiveWeights {
        let (weights, readAt) = try await reads.value(read: { [self] in try await forward(through: samplingELB).weights },
                                                      log: { [logger] in logger.warning("alb weights read: \($0)") })
        return live(weights, readAt: readAt)
    }

    /// A reading is refreshed once it is `readEvery` old, and the refresh may take up to its time limit.
    public var readingMaxAge: Duration? { reads.maxAge }

    private func live(_ weights: [String: Int], readAt: Date) -> LiveWeights {
        let assignment = WeightAssignment(from: [ServerWeight(server: fromCluster.servers[0], weight: weights[fromCluster.servers[0]] ?? 0)],
                                          to: [ServerWeight(server: toCluster.servers[0], weight: weights[toCluster.servers[0]] ?? 0)])
        return LiveWeights(assignment: assignment, configured: nil,
                           shares: shares(of: assignment, from: fromCluster.cluster, to: toCluster.cluster),
                           identity: LoadBalancerIdentity(instance: "alb listener \(spec.listenerArn)",
                                                          uptime: .milliseconds(Int64((readAt.timeIntervalSince1970 * 1000).rounded())),
                                                          generation: nil),
                           drift: memory.withLock { $0.drift(assignment) }, readAt: readAt)
    }

    @discardableResult
    public func apply(_ assignment: WeightAssignment) async throws -> LiveWeights {
        let groups = [fromCluster.servers[0], toCluster.servers[0]]
        for entry in assignment.all where !groups.contains(entry.server) {
            throw LoadBalancerError(.invalidWeight, driver: driver, address: address, server: entry.server,
                                    message: "'\(entry.server)' is the target group of neither '\(fromCluster.cluster)' nor '\(toCluster.cluster)'")
        }
        for entry in assignment.all where !ELBv2Client.weightRange.contains(entry.weight) {
            throw LoadBalancerError(.invalidWeight, driver: driver, address: address, server: entry.server, intended: entry.weight,
                                    message: "weight \(entry.weight) is outside the ALB's 0-999; nothing was written")
        }
        if assignment.fromTotal == 0 && assignment.toTotal == 0 {
            throw LoadBalancerError(.invalidWeight, driver: driver, address: address,
                                    message: "weight 0 on both target groups sends traffic nowhere; nothing was written")
        }
        let current = try await forward()
        _ = try await elb.modifyListener(listenerArn: spec.listenerArn,
                                         targetGroups: [(groups[0], assignment.fromTotal), (groups[1], assignment.toTotal)],
                                         stickiness: current.action.stickiness)
        let sent = Date()
        let readBack = try await forward().weights
        reads.remember(readBack, sent: sent)
        let live = live(readBack, readAt: sent)
        for (server, intended) in [(groups[0], assignment.fromTotal), (groups[1], assignment.toTotal)] {
            let held = live.assignment.all.first { $0.server == server }?.weight
            if held != intended {
                throw LoadBalancerError(.readBackMismatch, driver: driver, address: address, server: server, intended: intended, live: held,
                                        message: "target group \(server) reads back weight \(held.map(String.init) ?? "none"), not \(intended)")
            }
        }
        memory.withLock { $0.remember(applied: live.assignment) }
        return live
    }
}
