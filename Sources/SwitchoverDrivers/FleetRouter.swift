import Foundation
import Logging
import SwitchoverCore

/// A driver's settings that name several load-balancer instances or several services
/// (DESIGN.md, "Many services, several load-balancer instances"): each member, one instance
/// and one service, is driven by the driver's own single-form settings.
public protocol FleetSpec: DriverSpec {
    /// Every (instance, service) pair, instance by instance, services in the order written.
    var members: [FleetMember] { get }
    /// Service -> backend or route, in the order written; one entry without a service in the
    /// single form.
    var serviceTargets: [ServiceBackend] { get }
    /// The instances' names, in the order written (one in the single form).
    var instances: [String] { get }
}

extension FleetSpec {
    /// The named services of `serviceTargets`, nil in the single form.
    public var services: [String]? {
        let named = serviceTargets.compactMap(\.service)
        return named.isEmpty ? nil : named
    }

    /// True with several instances, or named services: the fleet router drives it (one
    /// instance and no service is the single form, driven by the driver directly).
    public var isFleet: Bool { instances.count > 1 || services != nil }
}

/// A driver section's `services: {service: target}`, in the order written: each service a
/// load-balancer name, each target (`what`: a backend, a route) read by `target` and mapped to
/// one service only. Every driver with services reads them this way.
func decodeServiceTargets(_ value: ConfigValue, what: String, target: (ConfigValue) -> String?) -> [ServiceBackend]? {
    guard let entries = value.entries(atMost: ConfigurationLimits.services,
                                      because: "each is read and written at every step on every instance") else { return nil }
    if entries.isEmpty {
        value.error("'services' is empty; map each service to its \(what)")
        return nil
    }
    var services: [ServiceBackend] = []
    var seen: [String: SourceLocation] = [:]
    var ok = true
    for entry in entries {
        guard let service = entry.name.nonEmptyString(), let name = target(entry.value) else { ok = false; continue }
        guard LoadBalancerName.isValid(service) else {
            entry.name.error("service name \(ConfigValue.quoted(service)) is not a name: \(LoadBalancerName.rule)")
            ok = false
            continue
        }
        if let first = seen[name] {
            entry.value.error("\(what) \(ConfigValue.quoted(name)) is mapped to two services (first at \(first)); each service has its own \(what)")
            ok = false
            continue
        }
        seen[name] = entry.value.location
        services.append(ServiceBackend(service: service, backend: name))
    }
    return ok ? services : nil
}

/// What no two instances of a driver's `instances` may share (a socket, an admin, a route
/// file): the value (with its kind, `socket:/run/a.sock`), where it is written, and what to
/// say when it was claimed before (given where).
struct InstanceClaim {
    var value: String
    var at: ConfigValue
    var twice: (SourceLocation) -> String
}

/// A driver section's `instances: [{name, ...}]`, in the order written: at most the limit, not
/// empty, each a mapping of `known` keys with a load-balancer `name`, no name twice. `decode`
/// reads the rest of one item (nil: it reported why): what it claims, and the instance for a
/// name; a claim made before by another instance (or by the same one twice) is an error there. Every driver with
/// instances reads them this way.
func decodeInstanceList<Instance>(_ value: ConfigValue, section: String, what: String, known: [String],
                                  decode: (ConfigMapping) -> (claims: [InstanceClaim], instance: (String) -> Instance)?) -> [Instance]? {
    guard let items = value.list(atMost: ConfigurationLimits.instances,
                                 because: "every weight is written to each instance and read back from each") else { return nil }
    if items.isEmpty {
        value.error("'instances' is empty; list every \(what) in front of the clusters")
        return nil
    }
    var instances: [Instance] = []
    var names: [String: SourceLocation] = [:]
    var claimed: [String: SourceLocation] = [:]
    var ok = true
    for item in items {
        guard let fields = item.mapping(context: "\(section).\(item.key)", known: known) else {
            ok = false
            continue
        }
        let nameValue = fields.required("name")
        let name = nameValue?.nonEmptyString()
        let decoded = decode(fields)
        guard let name, let nameValue, let decoded else { ok = false; continue }
        guard LoadBalancerName.isValid(name) else {
            nameValue.error("instance name \(ConfigValue.quoted(name)) is not a name: \(LoadBalancerName.rule)")
            ok = false
            continue
        }
        if let first = names[name] {
            nameValue.error("two instances are named \(ConfigValue.quoted(name)) (first at \(first)); each instance needs its own name")
            ok = false
            continue
        }
        var mine = claimed
        var twice: (claim: InstanceClaim, first: SourceLocation)?
        for claim in decoded.claims {
            if let first = mine[claim.value] { twice = (claim, first); break }
            mine[claim.value] = claim.at.location
        }
        if let twice {
            twice.claim.at.error(twice.claim.twice(twice.first))
            ok = false
            continue
        }
        names[name] = nameValue.location
        claimed = mine
        instances.append(decoded.instance(name))
    }
    return ok ? instances : nil
}

/// One instance and one service of a fleet, with the single-form settings that drive it.
public struct FleetMember: Sendable {
    public var instance: String
    /// nil in the single-service form.
    public var service: String?
    public var spec: any DriverSpec
    /// The backend (HAProxy) or route (Envoy) carrying the service, for messages.
    public var target: String
    public init(instance: String, service: String?, spec: any DriverSpec, target: String) {
        self.instance = instance
        self.service = service
        self.spec = spec
        self.target = target
    }
}

/// One weight change for several load-balancer instances and several services: every write
/// goes to every instance at once and is read back from each, and is verified only when all of
/// them agree with the plan. An instance that fails is named in the error, with its answer.
///
/// Reads are lenient where the coordinator can still act on part of the truth: `currentWeights`
/// and `stats` answer with the instances that answered and name the others (`unreachable`,
/// `missing`); they throw only when none answered. Writes are strict.
///
/// Counters are summed over instances, and each instance's own are kept beside the sum: the
/// engine adds them up per instance onto its previous sample, so a restarted instance's
/// counters start again from 0 without reading as a drop (which would blind the gates' window
/// and restart the drain's hold).
///
/// Server names are unique across services (the loader refuses a server in two services), so
/// an assignment over every server says which service each weight belongs to.
public final class FleetRouter: WeightRouter, TrafficObserver {
    struct Member: Sendable {
        var instance: String
        var service: String?
        var target: String
        var router: any WeightRouter
        var observer: any TrafficObserver
        var label: String { "\(instance)" + (service.map { " (service \($0), \(target))" } ?? " (\(target))") }
    }

    public let driver: String
    public let address: String
    public let translation: WeightTranslation
    public let capabilities: RouterCapabilities
    public let fromCluster: ClusterServers
    public let toCluster: ClusterServers
    /// Instance names, in order.
    public let instances: [String]
    /// Service names in order; `[nil]` in the single-service form.
    public let services: [String?]
    let members: [Member]
    let schedule: StepSchedule
    /// Per instance whose members answer from one read of it (HAProxy's `HAProxySharedReads`),
    /// that reader and its members' indexes; nil unless every member does.
    let instanceReads: [(reads: HAProxySharedReads, members: [(index: Int, haproxy: HAProxyLoadBalancer)])]?
    private let memory = Locked(Memory())

    private struct Memory {
        /// Per instance, when its process started, as last seen: an instance that does not
        /// answer keeps its last identity, so that the whole does not look restarted.
        var started: [String: (id: String, at: Date)] = [:]
    }

    init(driver: String, members: [Member], from: String, to: String, schedule: StepSchedule) {
        precondition(!members.isEmpty, "a fleet has at least one member")
        self.driver = driver
        self.members = members
        self.schedule = schedule
        let first = members[0].router
        translation = first.translation
        capabilities = first.capabilities
        var instances: [String] = []
        var services: [String?] = []
        for member in members {
            if !instances.contains(member.instance) { instances.append(member.instance) }
            if !services.contains(member.service) { services.append(member.service) }
        }
        self.instances = instances
        self.services = services
        var groups: [(reads: HAProxySharedReads, members: [(index: Int, haproxy: HAProxyLoadBalancer)])] = []
        for (index, member) in members.enumerated() {
            guard let haproxy = member.router as? HAProxyLoadBalancer, let reads = haproxy.shared,
                  member.observer as? HAProxyLoadBalancer === haproxy else { groups = []; break }
            if let at = groups.firstIndex(where: { $0.reads === reads }) {
                groups[at].members.append((index, haproxy))
            } else {
                groups.append((reads, [(index, haproxy)]))
            }
        }
        instanceReads = groups.isEmpty ? nil : groups
        let ofFirstInstance = members.filter { $0.instance == instances[0] }
        fromCluster = ClusterServers(cluster: from, servers: ofFirstInstance.flatMap(\.router.fromCluster.servers))
        toCluster = ClusterServers(cluster: to, servers: ofFirstInstance.flatMap(\.router.toCluster.servers))
        address = instances.map { name in
            "\(name) \(members.first { $0.instance == name }!.router.address)"
        }.joined(separator: ", ")
    }

    // MARK: - Fan-out

    /// `body` on every member at once; each member's result or error, in member order.
    private func everyMember<T: Sendable>(_ body: @escaping @Sendable (Member) async throws -> T) async -> [Result<T, any Error>] {
        await withTaskGroup(of: (Int, Result<T, any Error>).self) { group in
            for (index, member) in members.enumerated() {
                group.addTask {
                    do { return (index, .success(try await body(member))) } catch { return (index, .failure(error)) }
                }
            }
            var results = [Result<T, any Error>?](repeating: nil, count: members.count)
            for await (index, result) in group { results[index] = result }
            return results.map { $0! }
        }
    }

    /// Every member's value, or one error naming each instance that failed, once.
    private func strict<T: Sendable>(_ results: [Result<T, any Error>], doing what: String) throws -> [T] {
        var values: [T] = []
        for result in results { if case .success(let value) = result { values.append(value) } }
        let failed = failures(results)
        guard failed.isEmpty else {
            let code = results.lazy.compactMap { result -> LoadBalancerError.Code? in
                if case .failure(let error) = result { return (error as? LoadBalancerError)?.code ?? .unreachable }
                return nil
            }.first
            let names = instances.filter { failed[$0] != nil }
            throw LoadBalancerError(code ?? .unreachable, driver: driver,
                                    address: names.map { name in "\(name) \(members.first { $0.instance == name }!.router.address)" }
                                        .joined(separator: ", "),
                                    message: "\(what) failed on " + names.compactMap { failed[$0] }.joined(separator: "; "))
        }
        return values
    }

    /// Per instance that failed, one sentence: its name and address once, and what went wrong
    /// (once when every service failed the same way, as a dead instance does).
    private func failures<T>(_ results: [Result<T, any Error>]) -> [String: String] {
        var byInstance: [String: [(Member, String)]] = [:]
        for (member, result) in zip(members, results) {
            guard case .failure(let error) = result else { continue }
            let address = member.router.address
            let message = (error as? LoadBalancerError).map { $0.message.replacingOccurrences(of: "\(address): ", with: "") }
                ?? String(describing: error)
            byInstance[member.instance, default: []].append((member, message))
        }
        return byInstance.mapValues { failed in
            let (first, message) = failed[0]
            let head = "\(first.instance) (\(first.router.address))"
            if Set(failed.map(\.1)).count == 1 {
                let which = failed.count == 1 ? (first.service.map { "service \($0), \(first.target)" } ?? first.target)
                    : "\(failed.count) services: " + failed.compactMap { $0.0.service }.joined(separator: ", ")
                return "\(head): \(message) (\(which))"
            }
            return "\(head): " + failed.map { "\($0.0.service.map { "service \($0)" } ?? $0.0.target): \($0.1)" }.joined(separator: "; ")
        }
    }

    // MARK: - WeightRouter

    /// Each service's percentage: from the schedule at `step` when services are named (waves
    /// put them at different percentages); `percentToTarget` for every service otherwise, and
    /// for 0% (rollback) and 100% (promotion) without a step.
    func percents(percentToTarget: Double, step: Int?) -> [String?: Double] {
        var result: [String?: Double] = [:]
        let planned = (step ?? self.step(matching: percentToTarget)).map { schedule.percents(atStep: $0) } ?? [:]
        for service in services {
            result[service] = service.flatMap { planned[$0] } ?? percentToTarget
        }
        return result
    }

    /// With waves, the step whose one number (`StepSchedule.percent`, or the share its weights
    /// read back as) is `percent`: the numbers grow with every step, so at most one matches. A
    /// journal keeps the number; this finds the step it stands for.
    func step(matching percent: Double) -> Int? {
        guard schedule.hasWaves else { return nil }
        return (0...schedule.count).first { step in
            abs(schedule.percent(atStep: step) - percent) < 1e-6 || abs(plannedPercent(percentToTarget: -1, step: step) - percent) < 1e-6
        }
    }

    /// The first instance's assignment per service for these percentages, as `apply` writes it.
    private func planned(_ percents: [String?: Double]) -> [String?: WeightAssignment] {
        var result: [String?: WeightAssignment] = [:]
        for member in members where member.instance == instances[0] {
            result[member.service] = translation.weights(percentToTarget: percents[member.service] ?? 0,
                                                         from: member.router.fromCluster.servers, to: member.router.toCluster.servers)
        }
        return result
    }

    public func plannedPercent(percentToTarget: Double, step: Int?) -> Double {
        let assignments = planned(percents(percentToTarget: percentToTarget, step: step))
        return share(assignments) ?? WeightAssignment(from: services.flatMap { assignments[$0]?.from ?? [] },
                                                      to: services.flatMap { assignments[$0]?.to ?? [] }).effectivePercentToTarget
    }

    /// With waves, TO's share as the mean over services, each counting once, as the schedule
    /// counts it (a service at 100% and two at 0% is a third of the way); nil without waves,
    /// where it is the share of all the weights together.
    private func share(_ perService: [String?: WeightAssignment]) -> Double? {
        guard schedule.hasWaves else { return nil }
        let shares = services.compactMap { perService[$0]?.effectivePercentToTarget }
        return shares.isEmpty ? 0 : shares.reduce(0, +) / Double(shares.count)
    }

    public func apply(percentToTarget: Double, step: Int?) async throws -> LiveWeights {
        let percents = percents(percentToTarget: percentToTarget, step: step)
        let translation = translation
        let results = await everyMember { member in
            try await member.router.apply(translation.weights(percentToTarget: percents[member.service] ?? 0,
                                                              from: member.router.fromCluster.servers,
                                                              to: member.router.toCluster.servers))
        }
        return combine(try strict(results, doing: "writing weights"), unreachable: [], at: Date())
    }

    @discardableResult
    public func apply(_ assignment: WeightAssignment) async throws -> LiveWeights {
        let weights = Dictionary(assignment.all.map { ($0.server, $0.weight) }, uniquingKeysWith: { a, _ in a })
        for server in assignment.all where !fromCluster.servers.contains(server.server) && !toCluster.servers.contains(server.server) {
            throw LoadBalancerError(.invalidWeight, driver: driver, address: address, server: server.server,
                                    message: "server '\(server.server)' belongs to neither '\(fromCluster.cluster)' nor '\(toCluster.cluster)'")
        }
        let results = await everyMember { member in
            let part = WeightAssignment(
                from: member.router.fromCluster.servers.map { ServerWeight(server: $0, weight: weights[$0] ?? 0) },
                to: member.router.toCluster.servers.map { ServerWeight(server: $0, weight: weights[$0] ?? 0) })
            return try await member.router.apply(part)
        }
        return combine(try strict(results, doing: "writing weights"), unreachable: [], at: Date())
    }

    public func currentWeights() async throws -> LiveWeights {
        if let reads = await readEachInstance() { return try currentWeights(from: reads.map(\.live)) }
        return try currentWeights(from: await everyMember { try await $0.router.currentWeights() })
    }

    private func currentWeights(from results: [Result<LiveWeights, any Error>]) throws -> LiveWeights {
        let failed = failures(results)
        if failed.count == instances.count {
            throw LoadBalancerError(.unreachable, driver: driver, address: address,
                                    message: "no load-balancer instance answered: " + instances.compactMap { failed[$0] }.joined(separator: "; "))
        }
        // An instance answers whole or not at all: a member that failed makes its instance's
        // reading incomplete, so none of it is used.
        let usable = zip(members, results).map { member, result -> LiveWeights? in
            guard failed[member.instance] == nil, case .success(let live) = result else { return nil }
            return live
        }
        let unreachable = instances.compactMap { failed[$0] }
        return combine(usable, unreachable: unreachable, at: Date())
    }

    public func setDrain(cluster: String) async throws {
        _ = try servers(ofCluster: cluster)
        _ = try strict(await everyMember { try await $0.router.setDrain(cluster: cluster) }, doing: "drain of \(cluster)")
    }

    public func setReady(cluster: String) async throws {
        _ = try servers(ofCluster: cluster)
        _ = try strict(await everyMember { try await $0.router.setReady(cluster: cluster) }, doing: "making \(cluster) ready")
    }

    public func shutdownSessions(cluster: String) async throws {
        _ = try servers(ofCluster: cluster)
        _ = try strict(await everyMember { try await $0.router.shutdownSessions(cluster: cluster) },
                       doing: "shutting down \(cluster)'s sessions")
    }

    /// One reading of the whole from each member's (nil: its instance did not answer).
    private func combine(_ readings: [LiveWeights?], unreachable: [String], at now: Date) -> LiveWeights {
        var perService: [String?: WeightAssignment] = [:]
        var configured: [ServerWeight] = []
        var drift: [WeightDrift] = []
        var disagreements: [String] = []
        var breakdown: [MemberWeights] = []
        var inDrainByService: [String?: Set<String>] = [:]
        var hasDrainState = false
        var identities: [String: LoadBalancerIdentity] = [:]
        for (member, live) in zip(members, readings) {
            guard let live else { continue }
            breakdown.append(MemberWeights(instance: member.instance, service: member.service, assignment: live.assignment))
            identities[member.instance] = identities[member.instance] ?? live.identity
            drift += live.drift.map { WeightDrift(server: "\(member.instance): \($0.server)", applied: $0.applied, live: $0.live) }
            if let inDrain = live.inDrain {
                hasDrainState = true
                inDrainByService[member.service] = inDrainByService[member.service].map { $0.intersection(inDrain) } ?? inDrain
            }
            if let agreed = perService[member.service] {
                let theirs = Dictionary(agreed.all.map { ($0.server, $0.weight) }, uniquingKeysWith: { a, _ in a })
                let differ = live.assignment.all.filter { theirs[$0.server] != $0.weight }
                if !differ.isEmpty {
                    let first = breakdown.first { $0.service == member.service }!.instance
                    disagreements.append("\(member.label) holds " + differ.prefix(3).map { "\($0.server) \($0.weight)" }.joined(separator: ", ")
                                         + ", \(first) holds " + differ.prefix(3).map { "\(theirs[$0.server] ?? 0)" }.joined(separator: ", "))
                }
            } else {
                perService[member.service] = live.assignment
                configured += live.configured ?? []
            }
        }
        let assignment = WeightAssignment(from: services.flatMap { perService[$0]?.from ?? [] },
                                          to: services.flatMap { perService[$0]?.to ?? [] })
        let identity = composite(identities, at: now)
        var live = LiveWeights(assignment: assignment, configured: configured.isEmpty ? nil : configured,
                               shares: [:], identity: identity, drift: drift, readAt: now,
                               inDrain: hasDrainState ? inDrainByService.values.reduce(into: Set<String>()) { $0.formUnion($1) } : nil)
        live.serviceShare = perService.isEmpty ? nil : share(perService)
        live.shares = [fromCluster.cluster: assignment.fromTotal + assignment.toTotal == 0 ? 0 : 100 - live.effectivePercentToTarget,
                       toCluster.cluster: live.effectivePercentToTarget]
        live.members = breakdown
        live.disagreements = disagreements
        live.unreachable = unreachable
        return live
    }

    /// The identity of the whole: every instance's process, and the latest start among them
    /// (a restart of any instance is a new start). An instance that did not answer keeps its
    /// last identity.
    private func composite(_ identities: [String: LoadBalancerIdentity], at now: Date) -> LoadBalancerIdentity {
        memory.withLock { memory in
            for (instance, identity) in identities {
                memory.started[instance] = (identity.instance, now.addingTimeInterval(-Double(identity.uptime.milliseconds) / 1000))
            }
            let parts = instances.map { name in "\(name) \(memory.started[name]?.id ?? "unknown")" }
            let latest = instances.compactMap { memory.started[$0]?.at }.max() ?? now
            let uptime = Duration.milliseconds(max(0, Int64((now.timeIntervalSince(latest) * 1000).rounded())))
            return LoadBalancerIdentity(instance: parts.joined(separator: ", "), uptime: uptime, generation: nil)
        }
    }

    // MARK: - TrafficObserver

    public func stats() async throws -> LoadBalancerStats {
        if let reads = await readEachInstance() { return try stats(from: reads.map(\.stats)) }
        return try stats(from: await everyMember { try await $0.observer.stats() })
    }

    /// `stats()` and `currentWeights()` of one moment, as the sampler asks for them every
    /// sampling period: one read per instance when its members share one, each member's own two
    /// reads at once otherwise. Lenient and strict exactly as the two calls are.
    public func readWeightsAndStats() async throws -> (stats: LoadBalancerStats, live: LiveWeights) {
        if let reads = await readEachInstance() {
            return (try stats(from: reads.map(\.stats)), try currentWeights(from: reads.map(\.live)))
        }
        async let counted = everyMember { try await $0.observer.stats() }
        async let weighed = everyMember { try await $0.router.currentWeights() }
        let (statsResults, liveResults) = await (counted, weighed)
        return (try stats(from: statsResults), try currentWeights(from: liveResults))
    }

    /// Every member's counters and live weights, in member order, from one read of each
    /// instance (HAProxy: `show info;show servers state;show stat`, one round trip and one parse
    /// for every service on it, one task per instance); a failed read fails each member on that
    /// instance with its error. nil when the members do not share their instance's read (Envoy).
    private func readEachInstance() async -> [(stats: Result<LoadBalancerStats, any Error>, live: Result<LiveWeights, any Error>)]? {
        guard let instanceReads else { return nil }
        typealias Read = (index: Int, stats: Result<LoadBalancerStats, any Error>, live: Result<LiveWeights, any Error>)
        let reads = await withTaskGroup(of: [Read].self) { group in
            for (reader, onIt) in instanceReads {
                group.addTask {
                    do {
                        let answer = try await reader.read()
                        return onIt.map { index, haproxy in
                            (index, Result { try haproxy.stats(from: answer) }, Result { try haproxy.currentWeights(from: answer) })
                        }
                    } catch {
                        return onIt.map { index, _ in (index, .failure(error), .failure(error)) }
                    }
                }
            }
            var all: [Read] = []
            for await some in group { all += some }
            return all
        }
        return reads.sorted { $0.index < $1.index }.map { ($0.stats, $0.live) }
    }

    private func stats(from results: [Result<LoadBalancerStats, any Error>]) throws -> LoadBalancerStats {
        let failed = failures(results)
        if failed.count == instances.count {
            throw LoadBalancerError(.unreachable, driver: driver, address: address,
                                    message: "no load-balancer instance answered: " + instances.compactMap { failed[$0] }.joined(separator: "; "))
        }
        // Each instance's own counters, as it counted them: the engine sums them onto the
        // previous sample per instance (`LoadBalancerSample.rebased`), so a restarted instance
        // counts from 0 without looking like a drop, whichever coordinator process looks.
        let now = Date()
        var perInstance: [String: LoadBalancerStats] = [:]
        for (member, result) in zip(members, results) {
            guard failed[member.instance] == nil, case .success(let stats) = result else { continue }
            var instance = perInstance[member.instance]
                ?? LoadBalancerStats(clusters: [:], identity: stats.identity, takenAt: stats.takenAt)
            for (cluster, counters) in stats.clusters {
                instance.clusters[cluster] = instance.clusters[cluster].map { Self.sum($0, counters) } ?? counters
                if let service = member.service {
                    var services = instance.services ?? [:]
                    services[service, default: [:]][cluster] = counters
                    instance.services = services
                }
            }
            perInstance[member.instance] = instance
        }
        var all: [String: ClusterStats] = [:]
        var services: [String: [String: ClusterStats]] = [:]
        for instance in perInstance.values {
            for (cluster, stats) in instance.clusters { all[cluster] = all[cluster].map { Self.sum($0, stats) } ?? stats }
            for (service, clusters) in instance.services ?? [:] {
                for (cluster, stats) in clusters {
                    services[service, default: [:]][cluster] = services[service]?[cluster].map { Self.sum($0, stats) } ?? stats
                }
            }
        }
        var result = LoadBalancerStats(clusters: all, identity: composite(perInstance.mapValues(\.identity), at: now), takenAt: now)
        result.services = services.isEmpty ? nil : services
        result.instances = perInstance
        let missing = instances.filter { failed[$0] != nil }
        result.missing = missing.isEmpty ? nil : missing.compactMap { failed[$0] }
        return result
    }

    /// Two members' counters of one cluster, as one: counts and open sessions add up, the mean
    /// response time is weighted by requests answered.
    public static func sum(_ a: ClusterStats, _ b: ClusterStats) -> ClusterStats {
        var result = a
        result.activeSessions += b.activeSessions
        result.totalSessions += b.totalSessions
        result.totalRequests += b.totalRequests
        result.responses2xx += b.responses2xx
        result.responses5xx += b.responses5xx
        result.responsesOther += b.responsesOther
        result.servers += b.servers
        switch (a.meanResponseTime, b.meanResponseTime) {
        case (let x?, let y?):
            let wa = Double(max(a.totalRequests, 1)), wb = Double(max(b.totalRequests, 1))
            result.meanResponseTime = .milliseconds(Int64(((Double(x.milliseconds) * wa + Double(y.milliseconds) * wb) / (wa + wb)).rounded()))
        case (nil, let y?):
            result.meanResponseTime = y
        default:
            break
        }
        return result
    }
}

/// One member's live weights in a fleet reading: an instance and a service.
public struct MemberWeights: Sendable, Hashable, Codable {
    public var instance: String
    public var service: String?
    public var assignment: WeightAssignment
    public init(instance: String, service: String?, assignment: WeightAssignment) {
        self.instance = instance
        self.service = service
        self.assignment = assignment
    }
}
