/// The four outcomes of one gate evaluation, as Argo Rollouts distinguishes them.
///
/// `inconclusive` (too little traffic to judge) and `error` (the signal source itself failed) are
/// kept apart from `fail` on purpose: neither may count against TO (a monitoring outage must not
/// trigger a rollback) and neither may count for it (traffic never advances blind).
public enum GateVerdict: String, Sendable, Hashable, Codable, CaseIterable {
    case pass, fail, inconclusive, error
}

/// One gate evaluation's verdict, the measured value when there is one, and a sentence for people.
public struct GateOutcome: Sendable, Hashable, Codable {
    public var verdict: GateVerdict
    /// The figure that was judged (a ratio, a query result, ...), when there was one.
    public var value: Double?
    public var detail: String

    public init(_ verdict: GateVerdict, value: Double? = nil, detail: String) {
        self.verdict = verdict
        self.value = value
        self.detail = detail
    }

    public static func pass(_ detail: String, value: Double? = nil) -> GateOutcome { .init(.pass, value: value, detail: detail) }
    public static func fail(_ detail: String, value: Double? = nil) -> GateOutcome { .init(.fail, value: value, detail: detail) }
    public static func inconclusive(_ detail: String, value: Double? = nil) -> GateOutcome {
        .init(.inconclusive, value: value, detail: detail)
    }
    public static func error(_ detail: String) -> GateOutcome { .init(.error, detail: detail) }
}

/// A gate's outcome with the gate's name, as fed to the engine and written to the journal.
public struct GateResult: Sendable, Hashable, Codable {
    public var gate: String
    public var outcome: GateOutcome
    public init(gate: String, outcome: GateOutcome) {
        self.gate = gate
        self.outcome = outcome
    }
}

/// One cluster's cumulative counters in the load balancer at one moment, summed over the
/// cluster's servers. Cumulative (since the load balancer started) so that any two samples give
/// the window between them; a counter that went down means the load balancer restarted.
public struct ClusterCounters: Sendable, Hashable, Codable {
    /// HTTP responses of any class (HAProxy: the sum of `hrsp_1xx` … `hrsp_other`).
    public var responses: Int64
    public var responses2xx: Int64
    public var responses5xx: Int64
    /// Sessions ever opened to the cluster's servers (HAProxy `stot`; Envoy: requests ever sent,
    /// `upstream_rq_total`). Its growth is new traffic: it restarts the drain's hold.
    public var sessionsTotal: Int64
    /// Sessions open now (HAProxy `scur`; Envoy: requests in flight). Neither counts an idle
    /// keep-alive or pooled connection, which holds nothing on the cluster.
    public var activeSessions: Int
    /// The live weight, summed over the cluster's servers, as read back from the load balancer.
    public var weight: Int
    /// Cumulative response time in milliseconds, when the load balancer keeps one (Envoy's
    /// histogram sum). Gives an exact mean over the window.
    public var responseTimeTotalMilliseconds: Double?
    /// The load balancer's own recent mean response time in milliseconds (HAProxy `rtime`, over
    /// its last 1024 requests), used when there is no cumulative total.
    public var responseTimeAverageMilliseconds: Double?

    public init(responses: Int64 = 0, responses2xx: Int64 = 0, responses5xx: Int64 = 0, sessionsTotal: Int64 = 0,
                activeSessions: Int = 0, weight: Int = 0, responseTimeTotalMilliseconds: Double? = nil,
                responseTimeAverageMilliseconds: Double? = nil) {
        self.responses = responses
        self.responses2xx = responses2xx
        self.responses5xx = responses5xx
        self.sessionsTotal = sessionsTotal
        self.activeSessions = activeSessions
        self.weight = weight
        self.responseTimeTotalMilliseconds = responseTimeTotalMilliseconds
        self.responseTimeAverageMilliseconds = responseTimeAverageMilliseconds
    }
}

/// Journaled as a list, `[responses, 2xx, 5xx, sessionsTotal, activeSessions, weight,
/// rtimeTotal, rtimeAverage]`: the state snapshot is written every sampling period and holds
/// several samples (the latest, each gate's window start), each with every cluster, service and
/// instance, so the key names were most of its bytes (and of the coordinator's CPU with several
/// instances). A keyed object, as journals before it hold, still reads.
extension ClusterCounters {
    private enum Keys: String, CodingKey {
        case responses, responses2xx, responses5xx, sessionsTotal, activeSessions, weight
        case responseTimeTotalMilliseconds, responseTimeAverageMilliseconds
    }

    public func encode(to encoder: any Encoder) throws {
        var list = encoder.unkeyedContainer()
        try list.encode(responses)
        try list.encode(responses2xx)
        try list.encode(responses5xx)
        try list.encode(sessionsTotal)
        try list.encode(activeSessions)
        try list.encode(weight)
        try list.encode(responseTimeTotalMilliseconds)
        try list.encode(responseTimeAverageMilliseconds)
    }

    public init(from decoder: any Decoder) throws {
        if var list = try? decoder.unkeyedContainer() {
            self.init(responses: try list.decode(Int64.self), responses2xx: try list.decode(Int64.self),
                      responses5xx: try list.decode(Int64.self), sessionsTotal: try list.decode(Int64.self),
                      activeSessions: try list.decode(Int.self), weight: try list.decode(Int.self),
                      responseTimeTotalMilliseconds: try list.decode(Double?.self),
                      responseTimeAverageMilliseconds: try list.decode(Double?.self))
            return
        }
        let keyed = try decoder.container(keyedBy: Keys.self)
        self.init(responses: try keyed.decode(Int64.self, forKey: .responses),
                  responses2xx: try keyed.decode(Int64.self, forKey: .responses2xx),
                  responses5xx: try keyed.decode(Int64.self, forKey: .responses5xx),
                  sessionsTotal: try keyed.decode(Int64.self, forKey: .sessionsTotal),
                  activeSessions: try keyed.decode(Int.self, forKey: .activeSessions),
                  weight: try keyed.decode(Int.self, forKey: .weight),
                  responseTimeTotalMilliseconds: try keyed.decodeIfPresent(Double.self, forKey: .responseTimeTotalMilliseconds),
                  responseTimeAverageMilliseconds: try keyed.decodeIfPresent(Double.self, forKey: .responseTimeAverageMilliseconds))
    }
}

/// Every cluster's counters at one sampling of the load balancer (every `policy.sampling`).
public struct LoadBalancerSample: Sendable, Hashable, Codable {
    public var at: Instant
    /// Keyed by cluster name; with several services or instances, summed over all of them.
    public var clusters: [String: ClusterCounters]
    /// Per service, keyed by cluster name (summed over instances); nil in the single form.
    public var services: [String: [String: ClusterCounters]]?
    /// Load-balancer instances that did not answer for this sample (their counters are left
    /// out); nil or empty when every one did. A drain never ends on such a sample.
    public var missing: [String]?
    /// Several instances: each one's own counters, as it counted them. The engine sums them
    /// onto the previous sample (`rebased(onto:)`), per instance, so that one instance that
    /// restarted (its counters back at 0) or did not answer is neither a drop nor new traffic
    /// for the whole, whichever coordinator process took the previous sample.
    public var instances: [String: InstanceCounters]?
    /// The TTL of FROM's DNS record, read back with the weights (Route53); nil for a load
    /// balancer that has none. The drain waits at least this long after FROM's weight reads 0.
    public var recordTTL: Duration?

    public init(at: Instant, clusters: [String: ClusterCounters],
                services: [String: [String: ClusterCounters]]? = nil, missing: [String]? = nil) {
        self.at = at
        self.clusters = clusters
        self.services = services
        self.missing = missing
    }

    /// The whole's counters as the previous sample's plus what each instance counted since
    /// (all of its counters when they went down or its process changed: it restarted and
    /// counted from 0; nothing for an instance that did not answer, whose last counters are
    /// carried forward). Open sessions are what the answering instances hold now, plus the last
    /// known of those that did not answer. Without per-instance counters, or without a previous
    /// sample, the sample as it is.
    public func rebased(onto previous: LoadBalancerSample?) -> LoadBalancerSample {
        guard let instances, let previous, let before = previous.instances else { return self }
        var result = self
        var carried = instances
        for (name, counters) in before where instances[name] == nil { carried[name] = counters }
        result.instances = carried
        func advance(_ old: ClusterCounters?, key: (InstanceCounters) -> ClusterCounters?) -> ClusterCounters? {
            var total = old ?? ClusterCounters()
            total.activeSessions = 0
            var seen = false
            for (name, now) in carried {
                guard let current = key(now) else { continue }
                seen = true
                total.activeSessions += current.activeSessions
                guard instances[name] != nil else { continue }
                let last = before[name].flatMap(key)
                let restarted = last == nil || before[name]?.process != now.process
                    || current.responses < last!.responses || current.responses2xx < last!.responses2xx
                    || current.responses5xx < last!.responses5xx || current.sessionsTotal < last!.sessionsTotal
                let base = restarted ? ClusterCounters() : last!
                total.responses += current.responses - base.responses
                total.responses2xx += current.responses2xx - base.responses2xx
                total.responses5xx += current.responses5xx - base.responses5xx
                total.sessionsTotal += current.sessionsTotal - base.sessionsTotal
                if let t = current.responseTimeTotalMilliseconds {
                    total.responseTimeTotalMilliseconds = (total.responseTimeTotalMilliseconds ?? 0) + t - (base.responseTimeTotalMilliseconds ?? 0)
                }
            }
            return seen ? total : old
        }
        for cluster in Set(clusters.keys).union(previous.clusters.keys) {
            guard var total = advance(previous.clusters[cluster], key: { $0.counters(cluster) }) else { continue }
            total.weight = clusters[cluster]?.weight ?? total.weight
            total.responseTimeAverageMilliseconds = clusters[cluster]?.responseTimeAverageMilliseconds
            result.clusters[cluster] = total
        }
        if let services {
            var rebased = services
            for (service, perCluster) in services {
                for cluster in perCluster.keys {
                    guard var total = advance(previous.services?[service]?[cluster], key: { $0.services?[service]?[cluster] }) else { continue }
                    total.weight = perCluster[cluster]?.weight ?? total.weight
                    total.responseTimeAverageMilliseconds = perCluster[cluster]?.responseTimeAverageMilliseconds
                    rebased[service]?[cluster] = total
                }
            }
            result.services = rebased
        }
        return result
    }

    /// What the journal keeps of a sample, one series per key: each cluster, and with several
    /// services each service's clusters as `service/cluster` (names hold no `/`), so that the
    /// report can draw every service's weights.
    public var journaledSeries: [(key: String, counters: ClusterCounters)] {
        var series = clusters.sorted { $0.key < $1.key }.map { (key: $0.key, counters: $0.value) }
        for (service, perCluster) in (services ?? [:]).sorted(by: { $0.key < $1.key }) {
            series += perCluster.sorted { $0.key < $1.key }.map { (key: Self.seriesKey(service: service, cluster: $0.key), counters: $0.value) }
        }
        return series
    }

    /// `cart/green`: the journal's series of one service's cluster.
    public static func seriesKey(service: String, cluster: String) -> String { "\(service)/\(cluster)" }

    /// `cluster`'s counters in `service` (all services when nil).
    public func counters(_ cluster: String, service: String?) -> ClusterCounters? {
        guard let service else { return clusters[cluster] }
        return services?[service]?[cluster]
    }
}

/// One load-balancer instance's own counters in a sample of several (`LoadBalancerSample.instances`).
public struct InstanceCounters: Sendable, Hashable, Codable {
    /// The process that counted them (HAProxy's pid): another one started from 0.
    public var process: String
    public var clusters: [String: ClusterCounters]
    public var services: [String: [String: ClusterCounters]]?
    public init(process: String, clusters: [String: ClusterCounters], services: [String: [String: ClusterCounters]]? = nil) {
        self.process = process
        self.clusters = clusters
        self.services = services
    }

    /// `cluster`'s counters on this instance: as kept, or the sum of its services' (a sample of
    /// several services keeps only those: the state snapshot holding it is written every period).
    public func counters(_ cluster: String) -> ClusterCounters? {
        if let kept = clusters[cluster] { return kept }
        let parts = (services ?? [:]).values.compactMap { $0[cluster] }
        guard var total = parts.first else { return nil }
        for part in parts.dropFirst() {
            total.responses += part.responses
            total.responses2xx += part.responses2xx
            total.responses5xx += part.responses5xx
            total.sessionsTotal += part.sessionsTotal
            total.activeSessions += part.activeSessions
            total.weight += part.weight
            if let t = part.responseTimeTotalMilliseconds {
                total.responseTimeTotalMilliseconds = (total.responseTimeTotalMilliseconds ?? 0) + t
            }
        }
        return total
    }
}

/// What happened to one cluster's traffic between two samples.
public struct TrafficWindow: Sendable, Hashable, Codable {
    public var duration: Duration
    public var responses: Int64
    public var responses5xx: Int64
    public var newSessions: Int64
    /// 5xx / responses; nil when there were no responses.
    public var ratio5xx: Double? { responses > 0 ? Double(responses5xx) / Double(responses) : nil }
    public var meanResponseTimeMilliseconds: Double?

    /// The window from `previous` to `current`, or nil when a cumulative counter went down: the
    /// load balancer restarted (or was reloaded) in between, and the difference means nothing.
    public init?(from previous: ClusterCounters, at start: Instant, to current: ClusterCounters, at end: Instant) {
        guard current.responses >= previous.responses, current.responses5xx >= previous.responses5xx,
              current.responses2xx >= previous.responses2xx, current.sessionsTotal >= previous.sessionsTotal
        else { return nil }
        duration = end - start
        responses = current.responses - previous.responses
        responses5xx = current.responses5xx - previous.responses5xx
        newSessions = current.sessionsTotal - previous.sessionsTotal
        if let t0 = previous.responseTimeTotalMilliseconds, let t1 = current.responseTimeTotalMilliseconds {
            if t1 < t0 { return nil }
            meanResponseTimeMilliseconds = responses > 0 ? (t1 - t0) / Double(responses) : nil
        } else {
            meanResponseTimeMilliseconds = current.responseTimeAverageMilliseconds
        }
    }
}

extension LoadBalancerGate {
    /// Judges this gate over the window between two consecutive snapshots of its cluster.
    ///
    /// Too few responses (`minRequests`) is `inconclusive`, never a pass. A counter that went
    /// down (HAProxy restarted and forgot its counters) is `inconclusive` too: the window is
    /// unknown, and a negative rate must not pass for a healthy one. A cluster missing from a
    /// snapshot is `error`: the load balancer did not report what the gate needs.
    public func judge(previous: LoadBalancerSample, current: LoadBalancerSample) -> GateOutcome {
        judge(previous: previous, current: current, service: service)
    }

    /// Judges this gate in each of `services` (the services that have moved; a gate naming a
    /// service judges that one alone): it fails when one fails, errs when one errs, is
    /// inconclusive while one is, and passes when every one passes. Each detail names its service.
    public func judge(previous: LoadBalancerSample, current: LoadBalancerSample, services: [String]) -> GateOutcome {
        if service != nil || services.isEmpty { return judge(previous: previous, current: current) }
        let outcomes = services.map { name in (name, judge(previous: previous, current: current, service: name)) }
        for verdict in [GateVerdict.fail, .error, .inconclusive] {
            if let (name, outcome) = outcomes.first(where: { $0.1.verdict == verdict }) {
                return GateOutcome(verdict, value: outcome.value, detail: "service \(name): \(outcome.detail)")
            }
        }
        let worst = outcomes.max { ($0.1.value ?? 0) < ($1.1.value ?? 0) }
        return GateOutcome(.pass, value: worst?.1.value,
                           detail: outcomes.map { "service \($0.0): \($0.1.detail)" }.joined(separator: "; "))
    }

    private func judge(previous: LoadBalancerSample, current: LoadBalancerSample, service: String?) -> GateOutcome {
        guard let before = previous.counters(cluster, service: service), let after = current.counters(cluster, service: service) else {
            return .error("cluster \(cluster)\(service.map { " in service \($0)" } ?? "") is missing from the load balancer's statistics")
        }
        guard let window = TrafficWindow(from: before, at: previous.at, to: after, at: current.at) else {
            return .inconclusive("\(cluster): counters went down (load balancer restarted?); window unknown")
        }
        return judge(window)
    }

    /// Judges this gate over a window already computed.
    public func judge(_ window: TrafficWindow) -> GateOutcome {
        guard window.responses >= Int64(minRequests), window.responses > 0 else {
            return .inconclusive("\(cluster): \(window.responses) responses in the window, fewer than \(minRequests)",
                                 value: Double(window.responses))
        }
        let ratio = window.ratio5xx ?? 0
        if let max5xxRatio, ratio > max5xxRatio {
            return .fail("\(cluster): 5xx ratio \(Self.format(ratio)) above \(Self.format(max5xxRatio)) over \(window.responses) responses",
                         value: ratio)
        }
        if let maxMeanResponseTime {
            guard let mean = window.meanResponseTimeMilliseconds else {
                return .inconclusive("\(cluster): no response time reported")
            }
            let limit = Double(maxMeanResponseTime.milliseconds)
            if mean > limit {
                return .fail("\(cluster): mean response time \(Self.format(mean)) ms above \(Self.format(limit)) ms",
                             value: mean)
            }
        }
        return .pass("\(cluster): 5xx ratio \(Self.format(ratio)) over \(window.responses) responses", value: ratio)
    }

    static func format(_ value: Double) -> String { formatNumber(value, decimals: 4) }
}

/// The pure half of the Prometheus gate: the runtime runs the query, this judges its result.
public enum PrometheusVerdict {
    /// `result` holds the sample values the instant query returned: a scalar is one value, a
    /// vector one value per series. An empty result is `inconclusive` (the series does not exist
    /// yet, typically no traffic); several samples are an `error` because the query is ambiguous
    /// and picking one would judge the wrong thing; NaN is `inconclusive` (0/0 rates).
    public static func judge(result: [Double], min: Double?, max: Double?) -> GateOutcome {
        guard !result.isEmpty else { return .inconclusive("the query returned no sample") }
        guard result.count == 1 else {
            return .error("expected a single sample, the query returned \(result.count)")
        }
        let value = result[0]
        if value.isNaN { return .inconclusive("the query returned NaN", value: nil) }
        if let min, value < min { return .fail("\(value) below the minimum \(min)", value: value) }
        if let max, value > max { return .fail("\(value) above the maximum \(max)", value: value) }
        let bounds = [min.map { "≥ \($0)" }, max.map { "≤ \($0)" }].compactMap { $0 }.joined(separator: " and ")
        return .pass(bounds.isEmpty ? "\(value)" : "\(value) \(bounds)", value: value)
    }
}
