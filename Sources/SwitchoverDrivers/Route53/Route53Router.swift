import Foundation
import Logging
import SwitchoverAWS
import SwitchoverCore

/// Moves traffic between two weighted Route53 records of one name, one per cluster.
///
/// A step is one `ChangeResourceRecordSets` change batch that UPSERTs both records (Route53
/// applies a batch all or nothing, so no resolver ever sees one record moved and not the
/// other), each written back exactly as it was read (TTL, health check, alias target, values)
/// with only its weight changed; then `GetChange` until Route53 says `INSYNC` (every one of its
/// authoritative servers answers the new weights); then `ListResourceRecordSets` reads them back.
///
/// Constraints of the outside world this keeps:
/// - Route53 reads weight 0 on every record of a name as an equal split, not as "no traffic":
///   a write with both at 0 is refused here, and 100% to one cluster is 255/0.
/// - Route53 checks weights (0–255) but moto does not: the range is checked here before every
///   write.
/// - A change still PENDING past `insyncTimeout` fails the step with a message that says
///   PENDING: the write may yet go live, so the run pauses (a load-balancer fault is not green's
///   fault) instead of rolling on or back on a guess.
/// - Route53 allows five API requests a second per account, shared with every other tool: the
///   sampling loop's reads (`sampledWeights`) are paced to one per `readEvery` (`PacedReads`),
///   while `currentWeights` and a write's own reads (before the change batch, and the read-back
///   after INSYNC) always go to Route53.
public final class Route53Router: WeightRouter {
    public let driver = "route53"
    public let spec: Route53Spec
    public let fromCluster: ClusterServers
    public let toCluster: ClusterServers
    public let translation: WeightTranslation
    public var capabilities: RouterCapabilities { [] }
    public var address: String {
        "\(spec.endpoint ?? Route53Client.defaultEndpoint) zone \(spec.hostedZoneId) \(spec.recordName) \(spec.recordType)"
    }

    /// The cluster sections of FROM and TO (set identifier and value).
    let records: [String: Route53ClusterSpec]
    let route53Client: Route53Client
    /// The same client without retries, for the sampling loop's paced reads.
    private let samplingClient: Route53Client
    private let reads: PacedReads<(from: Route53RecordSet, to: Route53RecordSet)>
    private let pollInterval: Duration
    private let logger: Logger
    private let memory = Locked(ReadBackMemory())
    /// The last change batch and when it was seen INSYNC, for the read-back's identity (the journal).
    private let lastChange = Locked<String?>(nil)

    /// `pollInterval`: between two `GetChange` calls (Route53 usually turns INSYNC within a minute).
    public init(spec: Route53Spec, from: ClusterServers, to: ClusterServers, client: AWSClient,
                pollInterval: Duration = .seconds(2), logger: Logger) throws {
        var records: [String: Route53ClusterSpec] = [:]
        for cluster in [from, to] {
            guard let section = cluster.section?.spec as? Route53ClusterSpec else {
                throw LoadBalancerError(.invalidConfiguration, driver: "route53", address: "-",
                                        message: "cluster '\(cluster.cluster)' has no spec.loadBalancer.route53 section (setIdentifier, value)")
            }
            records[cluster.cluster] = section
        }
        self.spec = spec
        self.fromCluster = ClusterServers(cluster: from.cluster, servers: [records[from.cluster]!.setIdentifier], section: from.section)
        self.toCluster = ClusterServers(cluster: to.cluster, servers: [records[to.cluster]!.setIdentifier], section: to.section)
        self.records = records
        self.translation = Route53Driver().translation
        self.route53Client = Route53Client(client: client, endpoint: spec.endpoint, region: spec.region)
        self.samplingClient = Route53Client(client: client.with(retry: .init(maxRetries: 0), requestTimeout: samplingReadTimeout(spec.readEvery)),
                                            endpoint: spec.endpoint, region: spec.region)
        self.reads = PacedReads(every: spec.readEvery)
        self.pollInterval = pollInterval
        self.logger = logger
    }

    // MARK: reading

    /// Both clusters' records as Route53 holds them now: FROM's, then TO's.
    func readRecords(through client: Route53Client? = nil) async throws -> (from: Route53RecordSet, to: Route53RecordSet) {
        let sets = try await (client ?? route53Client).recordSets(hostedZoneId: spec.hostedZoneId, named: spec.recordName, type: spec.recordType)
        func record(_ cluster: ClusterServers) throws -> Route53RecordSet {
            let identifier = cluster.servers[0]
            guard let set = sets.first(where: { $0.setIdentifier == identifier }) else {
                let known = sets.compactMap(\.setIdentifier)
                throw LoadBalancerError(.unknownServer, driver: driver, address: address, server: identifier,
                                        message: "no weighted \(spec.recordType) record \(spec.recordName) with SetIdentifier '\(identifier)' (cluster '\(cluster.cluster)') in hosted zone \(spec.hostedZoneId)"
                                            + (known.isEmpty ? "" : "; it has \(known.map { "'\($0)'" }.joined(separator: ", "))"))
            }
            guard set.weight != nil else {
                throw LoadBalancerError(.badResponse, driver: driver, address: address, server: identifier,
                                        message: "record \(spec.recordName) SetIdentifier '\(identifier)' is not a weighted record (no Weight)")
            }
            if let wanted = records[cluster.cluster]?.value {
                let answers = set.values + (set.aliasTarget.map { [$0.dnsName] } ?? [])
                let norm: (String) -> String = { $0.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: ".")) }
                if !answers.contains(where: { norm($0) == norm(wanted) }) {
                    throw LoadBalancerError(.invalidConfiguration, driver: driver, address: address, server: identifier,
                                            message: "record \(spec.recordName) SetIdentifier '\(identifier)' answers \(answers.joined(separator: ", ")), not cluster '\(cluster.cluster)''s value \(wanted)")
                }
            }
            return set
        }
        return (try record(fromCluster), try record(toCluster))
    }

    /// The records as Route53 holds them now (the client retries a throttled read).
    public func currentWeights() async throws -> LiveWeights {
        let sent = Date()
        let read = try await readRecords()
        reads.remember(read, sent: sent)
        return live(from: read.from, to: read.to, readAt: sent)
    }

    /// The records as last read, read again in the background at most every `readEvery`,
    /// without retries (`PacedReads`).
    public func sampledWeights() async throws -> LiveWeights {
        let (read, readAt) = try await reads.value(read: { [self] in try await readRecords(through: samplingClient) },
                                                   log: { [logger] in logger.warning("route53 weights read: \($0)") })
        return live(from: read.from, to: read.to, readAt: readAt)
    }

    /// A reading is refreshed once it is `readEvery` old, and the refresh may take up to its time limit.
    public var readingMaxAge: Duration? { reads.maxAge }

    private func live(from: Route53RecordSet, to: Route53RecordSet, readAt: Date) -> LiveWeights {
        let assignment = WeightAssignment(from: [ServerWeight(server: fromCluster.servers[0], weight: from.weight ?? 0)],
                                          to: [ServerWeight(server: toCluster.servers[0], weight: to.weight ?? 0)])
        // Route53 has no process that restarts: a fixed start (the epoch) keeps the engine's
        // restart rule quiet; the generation names the last change batch and when it was INSYNC.
        let identity = LoadBalancerIdentity(instance: "route53 hosted zone \(spec.hostedZoneId)",
                                            uptime: .milliseconds(Int64((readAt.timeIntervalSince1970 * 1000).rounded())),
                                            generation: lastChange.withLock { $0 })
        let drift = memory.withLock { $0.drift(assignment) }
        var live = LiveWeights(assignment: assignment, configured: nil,
                               shares: shares(of: assignment, from: fromCluster.cluster, to: toCluster.cluster),
                               identity: identity, drift: drift, readAt: readAt)
        // Read at every read-back, so the drain waits the TTL the record has now, not the one
        // the policy was written for. An alias record has no TTL of its own (its target's
        // applies, which is not read here): nil, and the policy's dnsTTL alone counts.
        live.recordTTL = from.ttl.map { .seconds($0) }
        return live
    }

    // MARK: writing

    @discardableResult
    public func apply(_ assignment: WeightAssignment) async throws -> LiveWeights {
        let weights = try checked(assignment)
        let read = try await readRecords()
        var fromSet = read.from, toSet = read.to
        fromSet.weight = weights.from
        toSet.weight = weights.to
        let comment = "switchover: \(fromCluster.cluster) \(weights.from), \(toCluster.cluster) \(weights.to)"
        let change = try await route53Client.changeResourceRecordSets(hostedZoneId: spec.hostedZoneId,
                                                                changes: [Route53Change(.upsert, fromSet), Route53Change(.upsert, toSet)],
                                                                comment: comment)
        logger.info("route53 change submitted", metadata: ["change": "\(change.id)", "weights": "\(comment)"])
        let insyncAt = try await waitInsync(change)
        let evidence = "change \(change.id) INSYNC at \(UTCTimestamp.string(insyncAt))"
        lastChange.withLock { $0 = evidence }
        let sent = Date()
        let readBack = try await readRecords()
        reads.remember(readBack, sent: sent)
        let live = live(from: readBack.from, to: readBack.to, readAt: sent)
        for (server, intended) in [(fromCluster.servers[0], weights.from), (toCluster.servers[0], weights.to)] {
            let held = live.assignment.all.first { $0.server == server }?.weight
            if held != intended {
                throw LoadBalancerError(.readBackMismatch, driver: driver, address: address, server: server, intended: intended,
                                        live: held, message: "after \(evidence), record '\(server)' reads back weight \(held.map(String.init) ?? "none"), not \(intended)")
            }
        }
        memory.withLock { $0.remember(applied: live.assignment) }
        return live
    }

    /// FROM's and TO's weights, refused unless they are Route53 weights that mean what they say.
    private func checked(_ assignment: WeightAssignment) throws -> (from: Int, to: Int) {
        let known = Set(fromCluster.servers + toCluster.servers)
        for entry in assignment.all where !known.contains(entry.server) {
            throw LoadBalancerError(.invalidWeight, driver: driver, address: address, server: entry.server,
                                    message: "'\(entry.server)' is the set identifier of neither '\(fromCluster.cluster)' nor '\(toCluster.cluster)'")
        }
        for entry in assignment.all where !Route53Client.weightRange.contains(entry.weight) {
            throw LoadBalancerError(.invalidWeight, driver: driver, address: address, server: entry.server, intended: entry.weight,
                                    message: "weight \(entry.weight) for '\(entry.server)' is outside Route53's 0-255; nothing was written")
        }
        let from = assignment.fromTotal, to = assignment.toTotal
        if from == 0 && to == 0 {
            throw LoadBalancerError(.invalidWeight, driver: driver, address: address,
                                    message: "weight 0 on both records is an equal split in Route53, not no traffic; nothing was written")
        }
        return (from, to)
    }

    /// Polls `GetChange` until INSYNC (at least once: the status the change was submitted with
    /// is not trusted, moto says INSYNC at once); past `insyncTimeout` a `.timeout` that says PENDING.
    private func waitInsync(_ change: Route53ChangeInfo) async throws -> Date {
        let deadline = ContinuousClock.now + spec.insyncTimeout
        var polls = 0
        while true {
            let status = try await route53Client.getChange(id: change.id).status
            polls += 1
            if status == .insync { return Date() }
            if ContinuousClock.now >= deadline {
                throw LoadBalancerError(.timeout, driver: driver, address: address, answer: "\(status)",
                                        message: "change \(change.id) is still PENDING after \(formatDuration(spec.insyncTimeout)) (\(polls) GetChange polls): "
                                            + "Route53 has accepted the new weights but not every name server answers them yet; the run pauses rather than move on")
            }
            try await Task.sleep(for: pollInterval)
        }
    }
}
