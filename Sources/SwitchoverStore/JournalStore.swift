import SwitchoverCore

/// The journal of a cutover: what was decided, what was done, what was seen, and what people
/// asked for. The coordinator holding the journal's lease (see `CoordinatorLease`) is its only
/// writer of intents; other processes (`status`, `pause`, ...) read it and insert commands.
///
/// Every operation is atomic on its own: there are no open-ended transactions, so a store with
/// compare-and-swap writes (etcd) can implement it. The one write that must be conditional is
/// the intent: it lands together with the state that expects its result, and only while the
/// writer's fencing token is still the journal's (`beginIntent(run:at:action:detail:state:fence:)`).
///
/// Write-ahead: the runtime calls `beginIntent` before it performs an action and `finishIntent`
/// with the read-back after. On resume, `unfinishedIntents` lists the actions whose outcome is
/// unknown (the crash fell between the two); the runtime re-applies each exactly once (weights
/// are idempotent) and finishes it.
///
/// Implementations: `SQLiteJournal` (the embedded default at `--state`), `EtcdJournal`
/// (`--state etcd://...`, for a standby on another machine) and `MemoryJournal` (tests). Sendable: the runtime's tasks share one journal.
public protocol JournalStore: AnyObject, Sendable {
    /// Starts a new run and returns its id.
    func startRun(_ run: RunRecord) throws -> Int64
    /// The newest run, the one `run` resumes and `status` shows.
    func latestRun() throws -> RunRecord?
    /// The run with this id, or nil (`report --run ID`).
    func run(id: Int64) throws -> RunRecord?

    /// Appends an event and returns its sequence number (increasing, across runs). With
    /// `fence`, only while it is the current lease token (`StoreError.Code.fenced` otherwise,
    /// nothing written): what a coordinator writes is fenced, so a deposed one journals nothing.
    @discardableResult
    func append(_ event: JournalEvent, fence: Int64?) throws -> Int64
    /// Events of a run with a sequence number above `afterSequence`, oldest first.
    func events(run: Int64, afterSequence: Int64, limit: Int) throws -> [JournalEvent]
    /// The newest event of a run of this kind (the policy a run was journaled with, say).
    func lastEvent(run: Int64, kind: String) throws -> JournalEvent?

    /// Writes an `intent` event before the action is performed and, with it in one atomic write,
    /// the run's state snapshot `state` (JSON) when given; returns the intent's id. With `fence`,
    /// the write happens only while `fence` is the journal's current lease token, and otherwise
    /// throws `StoreError.Code.fenced` having written nothing: a coordinator that lost its lease
    /// never journals (and so never performs) another action.
    func beginIntent(run: Int64, at: Instant, action: String, detail: String, state: String?, fence: Int64?) throws -> Int64
    /// Writes the `result` event of an intent after the action and its read-back.
    func finishIntent(_ intent: Int64, at: Instant, ok: Bool, detail: String) throws
    /// Intents of a run with no result: performed or not, nobody knows.
    func unfinishedIntents(run: Int64) throws -> [JournalEvent]

    func recordGateEvaluation(_ evaluation: GateEvaluationRecord) throws
    func gateEvaluations(run: Int64, limit: Int) throws -> [GateEvaluationRecord]

    /// Inserts a command (from another process); returns its id.
    func submitCommand(_ command: String, arguments: String, at: Instant) throws -> Int64
    /// Commands not yet acknowledged, oldest first.
    func pendingCommands() throws -> [CommandRecord]
    /// Marks a command done with its outcome; the submitting CLI waits for this.
    /// With `fence`, only while it is the current lease token: a deposed coordinator cannot
    /// answer a command it will never carry out.
    func acknowledgeCommand(_ id: Int64, at: Instant, accepted: Bool, outcome: String, fence: Int64?) throws
    /// Withdraws a command nobody has acknowledged yet: marks it refused with `outcome`, in one
    /// conditional update, so the coordinator never picks it up later. The CLI calls it when its
    /// wait for the acknowledgement runs out: a command reported as refused must not run by
    /// surprise minutes later. Returns false (and changes nothing) when the coordinator
    /// acknowledged first; then its answer stands and is the one to report.
    func withdrawCommand(_ id: Int64, at: Instant, outcome: String) throws -> Bool
    func command(_ id: Int64) throws -> CommandRecord?

    /// Stores one sampling of the load balancer (one row per cluster).
    func recordSample(run: Int64, _ sample: LoadBalancerSample) throws
    /// Stores what one sampling turn observed, in one atomic write: the sample (when given) and
    /// the state snapshot it moved (JSON of `CutoverState`, when given), fenced like `saveState`.
    ///
    /// At observation durability: the write survives a crash of the coordinator (SIGKILL), and
    /// reaches stable storage with the next ordinary write after it (every intent, event,
    /// command and decision is one, and they stay in order), but a power cut may lose the last
    /// observations before it. Nothing is decided on an observation alone: an engine that
    /// resumes from the snapshot before is one sample behind, and samples again.
    func recordObservation(run: Int64, at: Instant, sample: LoadBalancerSample?, state: String?, fence: Int64?) throws
    /// Stores several samplings at once, all or none.
    func recordSamples(run: Int64, _ samples: [LoadBalancerSample]) throws
    /// Samples of one cluster since `since`, oldest first.
    func samples(run: Int64, cluster: String, since: Instant) throws -> [(at: Instant, counters: ClusterCounters)]
    /// Downsamples old samples (see `SampleRetention`); returns how many rows were deleted.
    /// The runtime calls it now and then (say once a minute).
    @discardableResult
    func pruneSamples(now: Instant, retention: SampleRetention) throws -> Int

    /// Takes the journal's lease for `holder`: returns the new fencing token, above every token
    /// before (SQLite and memory count 1, 2, 3...; etcd's are revisions). Every holder before is
    /// fenced from then on.
    func takeLease(holder: String, at: Instant) throws -> Int64
    /// The current fencing token (0 when the journal was never held).
    func leaseToken() throws -> Int64

    /// Replaces the run's engine state snapshot (JSON of `CutoverState`). With `fence`, only
    /// while it is the current lease token: a deposed coordinator cannot overwrite the state
    /// the lease's new holder wrote (an offline rollback's, say).
    func saveState(run: Int64, at: Instant, json: String, fence: Int64?) throws
    func loadState(run: Int64) throws -> (at: Instant, json: String)?
}

/// One run: a cutover from FROM to TO under a policy.
public struct RunRecord: Sendable, Hashable, Codable {
    public var id: Int64
    public var from: String
    public var to: String
    public var policy: String
    public var startedAt: Instant
    /// The coordinator process that started it, for people reading the journal.
    public var pid: Int32

    public init(id: Int64 = 0, from: String, to: String, policy: String, startedAt: Instant, pid: Int32) {
        self.id = id
        self.from = from
        self.to = to
        self.policy = policy
        self.startedAt = startedAt
        self.pid = pid
    }
}

/// One row of the events table. `intentID` ties an `intent` row to its `result` row.
public struct JournalEvent: Sendable, Hashable, Codable {
    public var sequence: Int64
    public var run: Int64
    public var at: Instant
    /// `intent`, `result`, or an `EngineEvent.Kind` raw value, or anything the runtime records.
    public var kind: String
    /// JSON, or a sentence.
    public var detail: String
    public var intentID: Int64?
    /// On a `result` row: whether the action and its read-back succeeded.
    public var ok: Bool?

    public init(sequence: Int64 = 0, run: Int64, at: Instant, kind: String, detail: String, intentID: Int64? = nil,
                ok: Bool? = nil) {
        self.sequence = sequence
        self.run = run
        self.at = at
        self.kind = kind
        self.detail = detail
        self.intentID = intentID
        self.ok = ok
    }
}

/// One gate evaluation as journaled.
public struct GateEvaluationRecord: Sendable, Hashable, Codable {
    public var run: Int64
    public var at: Instant
    public var step: Int
    public var gate: String
    public var outcome: GateOutcome

    public init(run: Int64, at: Instant, step: Int, gate: String, outcome: GateOutcome) {
        self.run = run
        self.at = at
        self.step = step
        self.gate = gate
        self.outcome = outcome
    }
}

/// A manual command written by another process, and its acknowledgement.
public struct CommandRecord: Sendable, Hashable, Codable {
    public var id: Int64
    public var command: String
    /// JSON arguments (force, reason, ...).
    public var arguments: String
    public var issuedAt: Instant
    public var acknowledgedAt: Instant?
    public var accepted: Bool?
    public var outcome: String?

    public init(id: Int64, command: String, arguments: String, issuedAt: Instant, acknowledgedAt: Instant?,
                accepted: Bool?, outcome: String?) {
        self.id = id
        self.command = command
        self.arguments = arguments
        self.issuedAt = issuedAt
        self.acknowledgedAt = acknowledgedAt
        self.accepted = accepted
        self.outcome = outcome
    }
}

/// How samples are kept bounded: everything from the last `fullResolution`, and before that one
/// sample per cluster per `bucket` (the first of each bucket). With 250 ms sampling, two
/// clusters and the defaults, a day-long drain keeps about 28,800 recent rows plus 2,880 older
/// ones instead of 691,200.
public struct SampleRetention: Sendable, Hashable {
    public var fullResolution: Duration
    public var bucket: Duration
    public init(fullResolution: Duration = .seconds(3600), bucket: Duration = .seconds(60)) {
        self.fullResolution = fullResolution
        self.bucket = bucket
    }
    public static let standard = SampleRetention()
}

extension JournalStore {
    /// An unfenced event (readers' commands, tests).
    @discardableResult
    public func append(_ event: JournalEvent) throws -> Int64 { try append(event, fence: nil) }

    public func acknowledgeCommand(_ id: Int64, at: Instant, accepted: Bool, outcome: String) throws {
        try acknowledgeCommand(id, at: at, accepted: accepted, outcome: outcome, fence: nil)
    }

    public func saveState(run: Int64, at: Instant, json: String) throws {
        try saveState(run: run, at: at, json: json, fence: nil)
    }

    /// An intent without a state snapshot or a fence (tests, and actions that expect no state).
    public func beginIntent(run: Int64, at: Instant, action: String, detail: String) throws -> Int64 {
        try beginIntent(run: run, at: at, action: action, detail: detail, state: nil, fence: nil)
    }
}
