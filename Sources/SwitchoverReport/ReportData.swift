import Foundation
import SwitchoverCore
import SwitchoverStore

/// One cluster's cumulative counters at one sampling, as the journal keeps them.
public struct ClusterSample: Sendable, Hashable {
    public var at: Instant
    public var counters: ClusterCounters
    public init(at: Instant, counters: ClusterCounters) {
        self.at = at
        self.counters = counters
    }
}

/// The few policy figures the report shows that the journal does not carry: the number of steps
/// (for "3 of 5") and the drain's `holdFor` and `dnsTTL` (for the drain chart). Optional: the
/// report of a journal whose policy file is gone still renders, without those marks.
public struct ReportPolicy: Sendable, Hashable {
    public var stepCount: Int?
    public var holdFor: Duration?
    public var dnsTTL: Duration?
    /// Several services: their names, in order (each gets its weight line); empty otherwise.
    public var services: [String] = []

    public init(stepCount: Int? = nil, holdFor: Duration? = nil, dnsTTL: Duration? = nil, services: [String] = []) {
        self.stepCount = stepCount
        self.holdFor = holdFor
        self.dnsTTL = dnsTTL
        self.services = services
    }

    /// Steps across waves (`StepSchedule`): what "3 of 6" counts.
    public init(_ policy: Policy) {
        self.init(stepCount: StepSchedule(policy: policy).count, holdFor: policy.drain.holdFor, dnsTTL: policy.drain.dnsTTL,
                  services: policy.loadBalancer.services ?? [])
    }
}

/// Everything one run's report shows, read from a journal. A plain value, so the renderer is a
/// pure function of it and tests can build one by hand.
public struct ReportData: Sendable {
    public var run: RunRecord
    /// Every event of the run, oldest first.
    public var events: [JournalEvent]
    public var gateEvaluations: [GateEvaluationRecord]
    /// Keyed by cluster name (FROM and TO), oldest first.
    public var samples: [String: [ClusterSample]]
    /// The detail of the run's newest `trustVerified` event (the `TrustReport` JSON), if any.
    public var trustJSON: String?
    /// The engine's last journaled state, if it decodes.
    public var finalState: CutoverState?
    public var finalStateAt: Instant?
    public var policy: ReportPolicy?

    public init(run: RunRecord, events: [JournalEvent], gateEvaluations: [GateEvaluationRecord],
                samples: [String: [ClusterSample]], trustJSON: String?, finalState: CutoverState?,
                finalStateAt: Instant?, policy: ReportPolicy? = nil) {
        self.run = run
        self.events = events
        self.gateEvaluations = gateEvaluations
        self.samples = samples
        self.trustJSON = trustJSON
        self.finalState = finalState
        self.finalStateAt = finalStateAt
        self.policy = policy
    }

    /// The journal `kind` under which the runtime records the preflight's `TrustReport` JSON.
    public static let trustEventKind = "trustVerified"

    /// Reads run `run` (the newest when nil) from `journal`: its events (paged, so a days-long
    /// run is read in chunks), gate evaluations, every sample of FROM and TO, the newest trust
    /// report and the last engine state. Throws `ReportError.noRun` when there is no such run.
    public static func load(from journal: any JournalStore, run: Int64? = nil,
                            policy: ReportPolicy? = nil) throws -> ReportData {
        let record: RunRecord
        if let run {
            guard let found = try journal.run(id: run) else {
                throw ReportError(.noRun, "the journal has no run \(run)")
            }
            record = found
        } else {
            guard let latest = try journal.latestRun() else {
                throw ReportError(.noRun, "the journal has no run yet")
            }
            record = latest
        }
        var events: [JournalEvent] = []
        var after: Int64 = 0
        while true {
            let page = try journal.events(run: record.id, afterSequence: after, limit: 5_000)
            events += page
            guard page.count == 5_000, let last = page.last else { break }
            after = last.sequence
        }
        let evaluations = try journal.gateEvaluations(run: record.id, limit: Int(Int32.max))
        var samples: [String: [ClusterSample]] = [:]
        let serviceKeys = (policy?.services ?? []).flatMap { service in
            [record.from, record.to].map { LoadBalancerSample.seriesKey(service: service, cluster: $0) }
        }
        for cluster in [record.from, record.to] + serviceKeys {
            samples[cluster] = try journal.samples(run: record.id, cluster: cluster,
                                                   since: Instant(millisecondsSinceEpoch: 0))
                .map { ClusterSample(at: $0.at, counters: $0.counters) }
        }
        let trust = events.last { $0.kind == trustEventKind }?.detail
        var state: CutoverState?
        var stateAt: Instant?
        if let (at, _) = try journal.loadState(run: record.id) {
            // A state that does not decode (an older engine's) only loses the drain details.
            state = try? journal.loadCutoverState(run: record.id)
            stateAt = at
        }
        return ReportData(run: record, events: events, gateEvaluations: evaluations, samples: samples,
                          trustJSON: trust, finalState: state, finalStateAt: stateAt, policy: policy)
    }
}

/// Every error SwitchoverReport throws: a code to match on and the context a person needs.
public struct ReportError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure; compare with the static constants.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String { case noRun }
        private let value: Value
        private init(_ value: Value) { self.value = value }
        /// The journal holds no run (or not the one asked for).
        public static let noRun = Code(.noRun)
        public var description: String { value.rawValue }
    }

    public let code: Code
    public let context: String

    public init(_ code: Code, _ context: String) {
        self.code = code
        self.context = context
    }

    public var description: String { "\(code): \(context)" }
}
