import Foundation
import Logging
import SwitchoverCore
import SwitchoverNet

/// Envoy with a file-based RDS route (`path_config_source`), the way Envoy takes new routes
/// without a control plane.
///
/// Each FROM/TO "server" is an Envoy cluster name; the route file holds one virtual host
/// (`*`) whose `/` route splits traffic with `weighted_clusters`, one entry per server.
///
/// A write:
/// 1. writes the new RouteConfiguration (JSON, which is YAML too, whatever the file's
///    extension) with a fresh `version_info` to a temporary file in the route file's folder,
///    then `rename()`s it over the route file: Envoy reloads on a move, never on an in-place
///    edit, and a rename is atomic, so Envoy never reads half a file;
/// 2. polls the admin `/config_dump?resource=dynamic_route_configs` until the route's
///    `version_info` is the new one (within `deadline`), watching
///    `http.*.rds.<route>.update_rejected` and `update_failure`: a rise is a
///    `.rejected` error, and the previous route file is put back so that a restarted Envoy
///    loads the last good weights; the previous weights stay live in Envoy meanwhile;
/// 3. compares the live weights with those written.
///
/// The route sets `validate_clusters: true`: a route naming a cluster Envoy does not have is
/// rejected, instead of loading and answering 404 to that share of traffic.
///
/// Stats, per FROM/TO cluster, from the admin `/stats` (counters since Envoy started):
/// - `activeSessions`: requests in flight to the cluster, `cluster.<c>.upstream_rq_active` +
///   `upstream_rq_pending_active` (a request waiting for a connection to it is in flight too);
/// - `totalSessions`: `upstream_rq_total`, requests ever sent to the cluster: it moves only when
///   a new request reaches it; `totalRequests`: `upstream_rq_completed` (responses received);
/// - `responses2xx`/`responses5xx`: `upstream_rq_2xx`/`upstream_rq_5xx`; `responsesOther`:
///   `upstream_rq_1xx` + `3xx` + `4xx`;
/// - `meanResponseTime`: `upstream_rq_time` histogram `_sum / _count` from `/stats/prometheus`
///   (Envoy merges histograms at each `stats_flush_interval`, 5 s by default: this lags by up
///   to that much, and is nil until the first flush after the first response);
/// - servers: one entry per Envoy cluster, `healthy` when at least one of its hosts has no
///   failed health flag in `/clusters` (else the flags).
///
/// Why requests and not connections, for the drain: Envoy pools its upstream connections and
/// keeps them open, idle, after their last request (`upstream_cx_active` stays up for the
/// cluster's idle timeout, an hour by default), and with keep-alive clients (every real one) a
/// cluster at weight 0 would never look drained. An idle pooled connection holds nothing on the
/// cluster: Envoy picks a cluster per request from the route, so once FROM's weight is 0 no new
/// request is sent on it. What does hold FROM is a request still under way there, and Envoy
/// counts that until its stream ends, whatever its length: a slow download, a long poll, an
/// upgraded stream (a websocket's `upstream_rq_active` stays 1 until it closes; its 101 is
/// counted in `upstream_rq_completed` at once). This is the HAProxy driver's meaning (`scur`
/// counts streams, not idle keep-alive connections; `stot` new sessions).
///
/// Envoy has no drain of a weighted cluster short of weight 0: `setDrain`/`setReady` throw
/// `.unsupported` (its `capabilities` are empty, so callers can ask first). Nor can it close
/// the requests open to one cluster on demand: `shutdownSessions` throws `.unsupported`, and
/// the policy loader refuses `drain.forceAfter` with this driver (`EnvoyDriver.capabilities`),
/// so nothing asks for it.
public final class EnvoyLoadBalancer: WeightRouter, TrafficObserver {
    public let driver = EnvoyDriver().name
    public let address: String
    public let routeFile: URL
    public let routeName: String
    public let admin: URL
    /// Envoy's weights are 32-bit; 10,000 per cluster gives shares to 0.01%.
    public let translation = EnvoyDriver().translation
    /// None: see `setDrain`, `shutdownSessions`.
    public let capabilities = EnvoyDriver().capabilities
    public let fromCluster: ClusterServers
    public let toCluster: ClusterServers
    /// How long a new route version may take to go live.
    public let deadline: Duration
    private let http: HTTPClient
    private let logger: Logger
    private let memory = Locked(Memory())

    private struct Memory {
        var readBack = ReadBackMemory()
        var sequence = 0
    }

    public init(spec: EnvoySpec, from: ClusterServers, to: ClusterServers, logger: Logger,
                deadline: Duration = .seconds(5), requestTimeout: Duration = .seconds(2)) throws {
        self.admin = spec.admin
        self.address = spec.admin.absoluteString
        self.routeFile = URL(fileURLWithPath: spec.routeFile)
        self.routeName = spec.routeName
        self.fromCluster = from
        self.toCluster = to
        self.deadline = deadline
        self.logger = logger
        self.http = HTTPClient(configuration: .init(connectTimeout: requestTimeout, timeout: requestTimeout),
                               logger: logger)
        for name in from.servers + to.servers + [spec.routeName]
        where name.isEmpty || name.contains(where: { $0.isNewline || $0 == "\"" || $0 == "\\" }) {
            throw LoadBalancerError(.invalidConfiguration, driver: "envoy", address: address, server: name,
                                    message: "'\(name)' cannot be an Envoy cluster or route name here")
        }
    }

    // MARK: - WeightRouter

    public func currentWeights() async throws -> LiveWeights {
        async let identity = readIdentity()
        async let route = readRoute()
        let (id, live) = try await (identity, route)
        return observe(live, identity: id)
    }

    @discardableResult
    public func apply(_ assignment: WeightAssignment) async throws -> LiveWeights {
        try checkAssignment(assignment)
        let before = try await counters(Self.rdsCounters)
        let previous = try? Data(contentsOf: routeFile)
        let version = memory.withLock { memory -> String in
            memory.sequence += 1
            return "switchover-\(Int(Date().timeIntervalSince1970 * 1000))-\(memory.sequence)"
        }
        // Envoy keeps a route whose content is unchanged (it compares hashes, not versions), so
        // a new version of the same weights never goes live: weights already live are written
        // to the file (for a restarted Envoy) and verified as they are, without waiting for it.
        let current = try await readRoute()
        let alreadyLive = assignment.all.allSatisfy { current.weights[$0.server, default: 0] == $0.weight }
        try writeRoute(routeConfiguration(assignment, version: version))

        let start = ContinuousClock.now
        var live: LiveRoute? = alreadyLive ? current : nil
        while live == nil {
            let route = try await readRoute()
            if route.version == version {
                live = route
                break
            }
            let now = try await counters(Self.rdsCounters)
            let rejected = now["update_rejected", default: 0] - before["update_rejected", default: 0]
            let failed = now["update_failure", default: 0] - before["update_failure", default: 0]
            if rejected > 0 || failed > 0 {
                if let previous { try? writeRoute(previous) }
                let missing = await missingClusters(assignment)
                throw LoadBalancerError(
                    .rejected, driver: driver, address: address, server: missing.first,
                    answer: "update_rejected +\(rejected), update_failure +\(failed); live version \(route.version ?? "none")",
                    message: "Envoy refused route version \(version) from \(routeFile.path)"
                        + (missing.isEmpty ? "" : "; no Envoy cluster named \(missing.map { "'\($0)'" }.joined(separator: ", "))")
                        + "; the previous weights stay live")
            }
            if ContinuousClock.now - start > deadline {
                throw LoadBalancerError(.timeout, driver: driver, address: address,
                                        answer: "live version \(route.version ?? "none")",
                                        message: "route version \(version) was not live within \(deadline)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        // A cluster absent from weighted_clusters carries no traffic: weight 0, as `observe` reads it.
        let liveWeights = live!.weights
        for server in assignment.all where liveWeights[server.server, default: 0] != server.weight {
            throw LoadBalancerError(.readBackMismatch, driver: driver, address: address, server: server.server,
                                    intended: server.weight, live: liveWeights[server.server],
                                    message: "cluster \(server.server): wrote weight \(server.weight), route version \(version) holds \(liveWeights[server.server].map(String.init) ?? "nothing")")
        }
        memory.withLock { memory in
            memory.readBack.remember(applied: assignment)
        }
        logger.debug("envoy route applied", metadata: [
            "admin": "\(address)", "version": "\(version)",
            "percentToTarget": "\(assignment.effectivePercentToTarget)",
        ])
        // Observed after the verified weights are remembered (as the HAProxy driver does), so the
        // read-back is not mistaken for drift against the previous step's weights.
        return observe(live!, identity: try await readIdentity())
    }

    // MARK: - TrafficObserver

    public func stats() async throws -> LoadBalancerStats {
        let names = fromCluster.servers + toCluster.servers
        let pattern = "^cluster\\.(" + names.map(Self.regexEscaped).joined(separator: "|") + ")\\.upstream_(rq|cx)_"
        async let identity = readIdentity()
        async let textStats = get("/stats?filter=" + Self.queryEscaped(pattern))
        async let prometheus = get("/stats/prometheus?filter=" + Self.queryEscaped(pattern + "time$"))
        async let clusters = get("/clusters")
        let (id, text, prom, hosts) = try await (identity, textStats, prometheus, clusters)

        var values: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.lastIndex(of: ":") else { continue }
            values[String(line[..<colon])] = Int(line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var timeSum: [String: Double] = [:]
        var timeCount: [String: Double] = [:]
        for line in prom.split(separator: "\n") where !line.hasPrefix("#") {
            guard let open = line.firstIndex(of: "{"), let close = line.firstIndex(of: "}"),
                  let value = Double(line[line.index(after: close)...].trimmingCharacters(in: .whitespaces)) else { continue }
            let metric = line[..<open]
            guard let nameRange = line[open..<close].range(of: "envoy_cluster_name=\"") else { continue }
            let rest = line[nameRange.upperBound..<close]
            let cluster = String(rest.prefix { $0 != "\"" })
            if metric == "envoy_cluster_upstream_rq_time_sum" { timeSum[cluster] = value }
            if metric == "envoy_cluster_upstream_rq_time_count" { timeCount[cluster] = value }
        }
        var health: [String: [String]] = [:]
        for line in hosts.split(separator: "\n") {
            let parts = line.components(separatedBy: "::")
            if parts.count == 4, parts[2] == "health_flags" {
                health[parts[0], default: []].append(parts[3])
            }
        }

        var result: [String: ClusterStats] = [:]
        for cluster in [fromCluster, toCluster] {
            var stats = ClusterStats(cluster: cluster.cluster, activeSessions: 0, totalSessions: 0, totalRequests: 0,
                                     responses2xx: 0, responses5xx: 0, responsesOther: 0, meanResponseTime: nil,
                                     servers: [])
            var sum = 0.0, count = 0.0
            for server in cluster.servers {
                func counter(_ name: String) -> Int { values["cluster.\(server).\(name)"] ?? 0 }
                stats.activeSessions += counter("upstream_rq_active") + counter("upstream_rq_pending_active")
                stats.totalSessions += counter("upstream_rq_total")
                stats.totalRequests += counter("upstream_rq_completed")
                stats.responses2xx += counter("upstream_rq_2xx")
                stats.responses5xx += counter("upstream_rq_5xx")
                stats.responsesOther += counter("upstream_rq_1xx") + counter("upstream_rq_3xx") + counter("upstream_rq_4xx")
                sum += timeSum[server] ?? 0
                count += timeCount[server] ?? 0
                guard let flags = health[server] else {
                    throw LoadBalancerError(.unknownServer, driver: driver, address: address, server: server,
                                            message: "Envoy has no cluster '\(server)' (cluster '\(cluster.cluster)')")
                }
                let serving = flags.contains("healthy")
                stats.servers.append(ServerHealth(server: server, status: serving ? "healthy" : flags.joined(separator: ","),
                                                  serving: serving))
            }
            if count > 0 { stats.meanResponseTime = .microseconds(Int64((sum / count * 1000).rounded())) }
            result[cluster.cluster] = stats
        }
        return LoadBalancerStats(clusters: result, identity: id, takenAt: Date())
    }

    // MARK: - Drain state

    public func setDrain(cluster: String) async throws {
        _ = try servers(ofCluster: cluster)
        throw LoadBalancerError(.unsupported, driver: driver, address: address,
                                message: "Envoy has no drain state for a weighted cluster; apply weight 0 to '\(cluster)' instead")
    }

    public func setReady(cluster: String) async throws {
        _ = try servers(ofCluster: cluster)
        throw LoadBalancerError(.unsupported, driver: driver, address: address,
                                message: "Envoy has no drain state for a weighted cluster; weights alone decide")
    }

    // MARK: - Route file

    /// The DiscoveryResponse Envoy's file-based RDS reads: one RouteConfiguration.
    func routeConfiguration(_ assignment: WeightAssignment, version: String) throws -> Data {
        let clusters = assignment.all.map { ["name": $0.server, "weight": $0.weight] as [String: Any] }
        let document: [String: Any] = [
            "version_info": version,
            "resources": [[
                "@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
                "name": routeName,
                "validate_clusters": true,
                "virtual_hosts": [[
                    "name": "switchover",
                    "domains": ["*"],
                    "routes": [[
                        "match": ["prefix": "/"],
                        "route": ["weighted_clusters": ["clusters": clusters]],
                    ]],
                ]],
            ]],
        ]
        return try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys])
    }

    /// Temporary file in the same folder (same file system, so `rename` is atomic), then rename.
    private func writeRoute(_ data: Data) throws {
        let folder = routeFile.deletingLastPathComponent()
        let temporary = folder.appendingPathComponent(".\(routeFile.lastPathComponent).switchover-\(UUID().uuidString)")
        do {
            // Not `atomically: true`: that renames its own temporary into the watched folder,
            // which would make Envoy reload the old file for nothing.
            try data.write(to: temporary)
        } catch {
            throw LoadBalancerError(.unreachable, driver: driver, address: routeFile.path,
                                    message: "cannot write \(temporary.path): \(error)")
        }
        guard rename(temporary.path, routeFile.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw LoadBalancerError(.unreachable, driver: driver, address: routeFile.path,
                                    message: "cannot rename \(temporary.path) over \(routeFile.path): \(reason)")
        }
    }

    private func checkAssignment(_ assignment: WeightAssignment) throws {
        let fromSet = Set(fromCluster.servers), toSet = Set(toCluster.servers)
        for (side, entries, allowed) in [("FROM", assignment.from, fromSet), ("TO", assignment.to, toSet)] {
            for entry in entries {
                guard allowed.contains(entry.server) else {
                    throw LoadBalancerError(.invalidWeight, driver: driver, address: address, server: entry.server,
                                            message: "cluster '\(entry.server)' is not one of \(side)'s servers")
                }
                guard (0...translation.maxWeight).contains(entry.weight) else {
                    throw LoadBalancerError(.invalidWeight, driver: driver, address: address, server: entry.server,
                                            intended: entry.weight,
                                            message: "weight \(entry.weight) for '\(entry.server)' is outside 0...\(translation.maxWeight)")
                }
            }
        }
        guard assignment.fromTotal + assignment.toTotal > 0 else {
            throw LoadBalancerError(.invalidWeight, driver: driver, address: address,
                                    message: "every weight is 0; Envoy needs a positive total to route at all")
        }
    }

    // MARK: - Admin endpoint

    private struct LiveRoute {
        var version: String?
        var weights: [String: Int]
    }

    /// The live route's version and weights, from `/config_dump`.
    private func readRoute() async throws -> LiveRoute {
        let body = try await get("/config_dump?resource=dynamic_route_configs")
        guard let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
            throw LoadBalancerError(.badResponse, driver: driver, address: address, answer: String(body.prefix(500)),
                                    message: "config_dump is not a JSON object")
        }
        let configs = json["configs"] as? [[String: Any]] ?? []
        guard let config = configs.first(where: { (($0["route_config"] as? [String: Any])?["name"] as? String) == routeName }),
              let route = config["route_config"] as? [String: Any] else {
            throw LoadBalancerError(.badResponse, driver: driver, address: address,
                                    message: "Envoy has no dynamic route configuration '\(routeName)' (is the listener's rds route_config_name the same?)")
        }
        var weights: [String: Int] = [:]
        let hosts = route["virtual_hosts"] as? [[String: Any]] ?? []
        // The first route that forwards anywhere decides: that is the one the driver writes.
        outer: for host in hosts {
            for entry in host["routes"] as? [[String: Any]] ?? [] {
                guard let action = entry["route"] as? [String: Any] else { continue }
                if let weighted = action["weighted_clusters"] as? [String: Any] {
                    for cluster in weighted["clusters"] as? [[String: Any]] ?? [] {
                        guard let name = cluster["name"] as? String else { continue }
                        weights[name, default: 0] += Self.int(cluster["weight"]) ?? 0
                    }
                    break outer
                }
                if let single = action["cluster"] as? String {
                    weights[single] = translation.maxWeight
                    break outer
                }
            }
        }
        return LiveRoute(version: config["version_info"] as? String, weights: weights)
    }

    /// Envoy names no process id, and its uptime counts whole seconds; what tells one process
    /// from the next is the time its static listeners were loaded (`last_updated`, to the
    /// millisecond, set once at start), with the node id and version alongside.
    private func readIdentity() async throws -> LoadBalancerIdentity {
        async let infoBody = get("/server_info")
        async let listenersBody = get("/config_dump?resource=static_listeners&mask=last_updated")
        let (body, listeners) = try await (infoBody, listenersBody)
        guard let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
            throw LoadBalancerError(.badResponse, driver: driver, address: address, answer: String(body.prefix(500)),
                                    message: "server_info is not a JSON object")
        }
        let node = (json["node"] as? [String: Any])?["id"] as? String ?? "?"
        let uptimeText = json["uptime_current_epoch"] as? String ?? "0s"
        let seconds = Double(uptimeText.trimmingCharacters(in: CharacterSet(charactersIn: "s"))) ?? 0
        let version = (json["version"] as? String).map { String($0.split(separator: "/").dropFirst().first ?? "") } ?? ""
        let dump = (try? JSONSerialization.jsonObject(with: Data(listeners.utf8))) as? [String: Any]
        let loaded = ((dump?["configs"] as? [[String: Any]]) ?? []).compactMap { $0["last_updated"] as? String }.min()
        return LoadBalancerIdentity(instance: "node \(node), envoy \(version), started \(loaded ?? "unknown")",
                                    uptime: .seconds(seconds), generation: nil)
    }

    /// RDS counters for the route, summed over every connection manager using it.
    static let rdsCounters = ["update_rejected", "update_failure", "update_success"]

    private func counters(_ names: [String]) async throws -> [String: Int] {
        let pattern = "\\.rds\\.\(Self.regexEscaped(routeName))\\.(" + names.joined(separator: "|") + ")$"
        let body = try await get("/stats?filter=" + Self.queryEscaped(pattern))
        var result: [String: Int] = [:]
        for line in body.split(separator: "\n") {
            guard let colon = line.lastIndex(of: ":"),
                  let value = Int(line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)) else { continue }
            let name = line[..<colon]
            if let last = name.split(separator: ".").last { result[String(last), default: 0] += value }
        }
        return result
    }

    /// The clusters of `assignment` Envoy does not have (for a rejection message).
    private func missingClusters(_ assignment: WeightAssignment) async -> [String] {
        guard let body = try? await get("/clusters") else { return [] }
        var known = Set<String>()
        for line in body.split(separator: "\n") {
            if let name = line.components(separatedBy: "::").first { known.insert(name) }
        }
        return assignment.all.map(\.server).filter { !known.contains($0) }
    }

    private func get(_ path: String) async throws -> String {
        let url = address.hasSuffix("/") ? String(address.dropLast()) + path : address + path
        let response: HTTPResponse
        do {
            response = try await http.get(url)
        } catch let error as HTTPError {
            throw LoadBalancerError(error.code == .timeout ? .timeout : .unreachable, driver: driver, address: address,
                                    message: "admin \(path): \(error.description)")
        }
        guard response.status == 200 else {
            throw LoadBalancerError(.badResponse, driver: driver, address: address, answer: String(response.text.prefix(500)),
                                    message: "admin \(path) answered HTTP \(response.status)")
        }
        return response.text
    }

    private func observe(_ route: LiveRoute, identity: LoadBalancerIdentity) -> LiveWeights {
        let assignment = WeightAssignment(
            from: fromCluster.servers.map { ServerWeight(server: $0, weight: route.weights[$0] ?? 0) },
            to: toCluster.servers.map { ServerWeight(server: $0, weight: route.weights[$0] ?? 0) })
        var identity = identity
        identity.generation = route.version
        // Drift is reported by whoever acts on it (the coordinator, once per episode), not
        // logged here on every read while it lasts.
        let drift = memory.withLock { $0.readBack.drift(assignment) }
        return LiveWeights(assignment: assignment, configured: nil,
                           shares: shares(of: assignment, from: fromCluster.cluster, to: toCluster.cluster),
                           identity: identity, drift: drift, readAt: Date())
    }

    static func int(_ value: Any?) -> Int? {
        if let number = value as? NSNumber { return number.intValue }
        if let text = value as? String { return Int(text) }
        return nil
    }

    static func regexEscaped(_ text: String) -> String {
        var result = ""
        for character in text {
            if "\\^$.|?*+()[]{}".contains(character) { result.append("\\") }
            result.append(character)
        }
        return result
    }

    static func queryEscaped(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
