import Prometheus
import Synchronization
import SwitchoverCore
import SwitchoverDrivers

/// Switchover's version, as `switchover_info{version}` shows it.
public enum SwitchoverVersion {
    public static let current = "0.1.0"
}

/// The coordinator's own series (DESIGN.md section 6), kept in a swift-prometheus registry that
/// `/metrics` renders (`MetricsServer`). A `Reporter`: the coordinator feeds it the same events
/// and progress snapshots as the person's terminal, so it reads the same views `status` does
/// (the journaled state, its latest sample, the `DrainView`) and never asks anything of its own.
///
/// What the coordinator calls only sets values: gauges and counters are atomics, the few
/// facts kept beside them (which phase is 1, when the last sample was taken) are behind a
/// `Mutex` held for a few assignments. Rendering happens on the server's event loop, never on the
/// coordinator's; the one value computed at scrape time is the age of the last sample.
///
/// Counters count what this process saw: a resumed run starts them at 0 again, as any
/// Prometheus counter does after a restart (`increase()` and `rate()` expect that).
public final class MetricsReporter: Reporter, Sendable {
    public let registry: PrometheusCollectorRegistry
    private let leader: Gauge
    private let clock: @Sendable () -> Instant
    private let state = Mutex(Series())

    /// The series of one run, made once its id is known (`begin`).
    struct Series {
        var run: RunSeries?
        /// The phase whose gauge is 1.
        var current: Phase?
        var lastSampleAt: Instant?
        /// Made on the first sample: no age before there is a sample.
        var sampleAge: Gauge?
        /// By cluster, then service.
        var weights: [String: [String: Gauge]] = [:]
        var drainSessions: Gauge?
    }

    struct RunSeries {
        var from: String
        var to: String
        /// The services as `switchover_weight_percent` names them.
        var services: [String]
        var phases: [Phase: Gauge]
        var step: Gauge
        var rollbacks: Counter
        /// By gate, then verdict.
        var gateEvaluations: [String: [GateVerdict: Counter]]
    }

    /// The contract's series (DESIGN.md section 6), with their help texts.
    enum Name: String, CaseIterable {
        case info, phase, step, weightPercent, gateEvaluationsTotal, rollbacksTotal, lastSampleAgeSeconds
        case drainActiveSessions, leader

        var help: String {
            switch self {
            case .info: "Switchover's version, as a label; always 1."
            case .phase: "1 for the run's current phase, 0 for every other phase."
            case .step: "The step whose weights are in place or being put in place (0 before the first)."
            case .weightPercent: "Each cluster's share of new traffic per service, in percent, from the weights the load balancer last read back."
            case .gateEvaluationsTotal: "Gate evaluations this coordinator saw, by gate and verdict."
            case .rollbacksTotal: "Rollbacks this coordinator started."
            case .lastSampleAgeSeconds: "Seconds since the coordinator last sampled the load balancer, at scrape time."
            case .drainActiveSessions: "Sessions still open to the cluster being drained, at the last sample."
            case .leader: "1 while this process holds the journal's lease (it alone moves weights), else 0."
            }
        }

        /// `switchover_<name>_<unit>`: the unit where the name has one.
        var descriptor: MetricNameDescriptor {
            let (metric, unit): (String, String) = switch self {
            case .info: ("info", "")
            case .phase: ("phase", "")
            case .step: ("step", "")
            case .weightPercent: ("weight", "percent")
            case .gateEvaluationsTotal: ("gate_evaluations", "total")
            case .rollbacksTotal: ("rollbacks", "total")
            case .lastSampleAgeSeconds: ("last_sample_age", "seconds")
            case .drainActiveSessions: ("drain_active_sessions", "")
            case .leader: ("leader", "")
            }
            return MetricNameDescriptor(namespace: "switchover", metricName: metric, unitName: unit, helpText: help)
        }
    }

    private func gauge(_ name: Name, _ labels: [(String, String)] = []) -> Gauge {
        registry.makeGauge(descriptor: name.descriptor, labels: labels)
    }

    private func counter(_ name: Name, _ labels: [(String, String)] = []) -> Counter {
        registry.makeCounter(descriptor: name.descriptor, labels: labels)
    }

    /// `leader` starts at 0: the runtime sets it once it holds the lease (`setLeader`).
    public init(version: String = SwitchoverVersion.current, clock: @escaping @Sendable () -> Instant = Coordinator.wallClock) {
        registry = PrometheusCollectorRegistry()
        self.clock = clock
        registry.makeGauge(descriptor: Name.info.descriptor, labels: [("version", version)]).set(1.0)
        leader = registry.makeGauge(descriptor: Name.leader.descriptor, labels: [])
    }

    public func setLeader(_ holdsLease: Bool) {
        leader.set(holdsLease ? 1.0 : 0.0)
    }

    /// Makes the run's series: every phase at 0 (the current one goes to 1 with the first
    /// progress), the step, the rollbacks, and every gate's evaluations by verdict at 0, so that
    /// `increase()` sees the first one.
    public func begin(run: Int64, from: String, to: String, policy: Policy) {
        let labels = [("run", "\(run)"), ("from", from), ("to", to), ("policy", policy.name)]
        var phases: [Phase: Gauge] = [:]
        for phase in Phase.allCases {
            let gauge = self.gauge(.phase, labels + [("phase", phase.rawValue)])
            gauge.set(0.0)
            phases[phase] = gauge
        }
        var gates: [String: [GateVerdict: Counter]] = [:]
        for gate in policy.gates {
            gates[gate.name] = Dictionary(uniqueKeysWithValues: GateVerdict.allCases.map { verdict in
                (verdict, counter(.gateEvaluationsTotal, [("gate", gate.name), ("verdict", verdict.rawValue)]))
            })
        }
        let series = RunSeries(from: from, to: to, services: Self.services(policy), phases: phases,
                               step: gauge(.step), rollbacks: counter(.rollbacksTotal),
                               gateEvaluations: gates)
        state.withLock { $0.run = series }
    }

    /// The services as `switchover_weight_percent{service}` names them: the policy's
    /// `services`, or in the single form the one backend (HAProxy) or route (Envoy), the name
    /// the fleet router's messages give a member without a service.
    static func services(_ policy: Policy) -> [String] {
        if let services = policy.loadBalancer.services { return services }
        let target = (policy.loadBalancer.settings as? any FleetSpec)?.serviceTargets.first?.backend
        return [target ?? policy.loadBalancer.driverName]
    }

    // MARK: - Reporter

    public func event(_ event: EngineEvent, at: Instant) {
        switch event.kind {
        case .gateEvaluated:
            guard let gate = event.gate, let verdict = event.outcome?.verdict else { return }
            let counter = state.withLock { $0.run?.gateEvaluations[gate]?[verdict] }
            if let counter {
                counter.increment()
            } else {
                // A gate the policy did not name when the run began (an adopted edit).
                self.counter(.gateEvaluationsTotal, [("gate", gate), ("verdict", verdict.rawValue)]).increment()
            }
        case .rollbackStarted:
            state.withLock { $0.run?.rollbacks }?.increment()
        case .stepVerified, .rollbackVerified, .weightsReasserted:
            // A read-back of weights just written: newer than the last sample, and the last
            // word when the run ends on it (a rollback, the promotion) before another sample.
            guard let text = event.evidence["percentToTarget"], let percent = Double(text) else { return }
            state.withLock { series in
                guard let run = series.run else { return }
                let toShare: Double
                if run.services.count == 1 {
                    toShare = percent
                } else if event.kind == .rollbackVerified || percent == 100 {
                    // Every service at once (a rollback is verified whole; 100 is every service's).
                    toShare = event.kind == .rollbackVerified ? 0 : 100
                } else {
                    return // several services mid-way: each one's share comes with the next sample
                }
                let split = [run.from: 100 - toShare, run.to: toShare]
                setWeights(Dictionary(uniqueKeysWithValues: run.services.map { ($0, split) }), in: &series)
            }
        default:
            break
        }
    }

    public func notify(_ message: String) {}
    public func note(kind: String, _ message: String) {}
    public func finish(_ line: String?) {}

    public func progress(_ progress: @autoclosure () -> ProgressSnapshot) {
        let snapshot = progress()
        // Series seen for the first time (a few per run) are made here too: the registry's own
        // lock is only ever taken inside this one, never the other way round.
        state.withLock { series in
            guard let run = series.run else { return }
            if series.current != snapshot.phase {
                if let current = series.current { run.phases[current]?.set(0.0) }
                run.phases[snapshot.phase]?.set(1.0)
                series.current = snapshot.phase
            }
            run.step.set(Double(snapshot.step))
            // A sample's weights once, when it is new: a write's read-back after it (see `event`)
            // is newer, and the snapshots that follow still carry the older sample.
            if let sample = snapshot.sample, sample.at != series.lastSampleAt {
                series.lastSampleAt = sample.at
                if series.sampleAge == nil {
                    series.sampleAge = self.gauge(.lastSampleAgeSeconds)
                }
                setWeights(Self.shares(sample, run: run), in: &series)
            }
            if let sessions = snapshot.drain?.activeSessions {
                let gauge = series.drainSessions ?? self.gauge(.drainActiveSessions, [("cluster", run.from)])
                series.drainSessions = gauge
                gauge.set(Double(sessions))
            }
        }
    }

    /// Sets `switchover_weight_percent` per service and cluster, making the series seen first.
    private func setWeights(_ shares: [String: [String: Double]], in series: inout Series) {
        for (service, clusters) in shares {
            for (cluster, percent) in clusters {
                let gauge = series.weights[cluster]?[service] ?? {
                    let made = self.gauge(.weightPercent, [("cluster", cluster), ("service", service)])
                    series.weights[cluster, default: [:]][service] = made
                    return made
                }()
                gauge.set(percent)
            }
        }
    }

    /// Per service, each cluster's share in percent from the sample's weights (read back with
    /// it): TO's the share `effectivePercentToTarget` gives, FROM's the rest, both 0 when every
    /// weight is 0 (as `status` shows them). The single form's one service is the whole.
    static func shares(_ sample: LoadBalancerSample, run: RunSeries) -> [String: [String: Double]] {
        func split(_ clusters: [String: ClusterCounters]) -> [String: Double]? {
            guard let from = clusters[run.from]?.weight, let to = clusters[run.to]?.weight else { return nil }
            let total = from + to
            let toShare = total == 0 ? 0 : 100 * Double(to) / Double(total)
            return [run.from: total == 0 ? 0 : 100 - toShare, run.to: toShare]
        }
        if let services = sample.services {
            return services.compactMapValues(split)
        }
        guard run.services.count == 1, let whole = split(sample.clusters) else { return [:] }
        return [run.services[0]: whole]
    }

    // MARK: - Rendering

    /// The text exposition of every series, with the age of the last sample as of now.
    public func render() -> [UInt8] {
        let (age, lastSampleAt) = state.withLock { ($0.sampleAge, $0.lastSampleAt) }
        if let age, let lastSampleAt {
            age.set(max(0, (clock() - lastSampleAt).secondsValue))
        }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(4096)
        registry.emit(into: &buffer)
        return buffer
    }
}
