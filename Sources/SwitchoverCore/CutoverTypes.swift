/// Where a cutover stands. The raw values are the contract of `status --output json`.
///
/// `rolledBack`, `aborted` and `decommissioned` are final: only a new run moves traffic again
/// (except that an aborted run may still be rolled back, since abort leaves TO's share in place).
public enum Phase: String, Sendable, Hashable, Codable, CaseIterable {
    case pending, preflight, shifting, paused, promoted, draining, drained, decommissioned, rolledBack, aborted

    /// True once the run will never advance traffic to TO again.
    public var isFinal: Bool {
        switch self {
        case .rolledBack, .aborted, .decommissioned: true
        default: false
        }
    }
}

/// A command from a person, usually written to the journal by another process's CLI.
public enum ManualCommand: Sendable, Hashable, Codable {
    case pause(reason: String?)
    case resume
    /// Skip the remaining steps to 100%; gates are still watched for one bake.
    case promote
    /// Stop here and leave the weights as they are.
    case abort(reason: String?)
    /// All traffic back to FROM now.
    case rollback(reason: String?)
    /// Record that FROM may be torn down. Refused unless drained, or `force` with a reason.
    case decommission(force: Bool, reason: String?)

    /// The command's name as typed on the command line.
    public var name: String {
        switch self {
        case .pause: "pause"
        case .resume: "resume"
        case .promote: "promote"
        case .abort: "abort"
        case .rollback: "rollback"
        case .decommission: "decommission"
        }
    }
}

/// How the load balancer's weights read back after a `setWeights` action.
public enum WeightsReadBack: Sendable, Hashable, Codable {
    /// The live weights are the ones asked for; `percentToTarget` is their effective share.
    case verified(percentToTarget: Double)
    /// Setting or reading back failed, or the live weights differ; `detail` says how.
    case mismatch(detail: String)
}

/// The result of the runtime's preflight checks (config, trust, health, load balancer).
public struct PreflightResult: Sendable, Hashable, Codable {
    /// Each failed check as a sentence; empty means preflight passed.
    public var failures: [String]
    public init(failures: [String]) { self.failures = failures }
    public static let passed = PreflightResult(failures: [])
    public var passed: Bool { failures.isEmpty }
}

/// One input to the engine. The runtime turns whatever happened (a timer, a sample, an answer
/// from the load balancer, a command from the journal) into exactly one of these.
public enum EngineInput: Sendable, Hashable, Codable {
    /// Time passed; the engine checks bakes, evaluation intervals and deadlines.
    case tick
    case preflight(PreflightResult)
    /// The load balancer's counters, every `policy.sampling`. Drives the hard signal at once,
    /// the windows of `loadBalancer` gates, and the drain detector while draining.
    case loadBalancerSample(LoadBalancerSample)
    /// Outcomes of an `evaluateGates` action, for the gates it named. `evaluation` is the id
    /// that action carried: results of an evaluation started before the current step are stale
    /// and only recorded.
    case gateResults(evaluation: Int, results: [GateResult])
    /// The read-back after the `setWeights` action with the same `intent` number.
    case weightsApplied(intent: Int, result: WeightsReadBack)
    /// `id` is the journal's command id, echoed in the `acknowledge` action.
    case command(ManualCommand, id: Int64?)
    /// A command from the journal, submitted at `issuedAt`, read by a coordinator that took the
    /// journal at `coordinatorSince`: one submitted before that was addressed to no coordinator
    /// (none held the journal) and is refused as stale, never carried out late; otherwise it is
    /// `.command`.
    case journaledCommand(ManualCommand, id: Int64, issuedAt: Instant, coordinatorSince: Instant)
    /// FROM's counters while draining, when the runtime samples FROM alone (`switchover drain`).
    case drainSample(DrainSample)
    /// The live weights as read from the load balancer, every `policy.sampling`, with the
    /// instance that answered: the engine compares them with the journal (see `DriftEpisode`).
    case liveWeights(LiveWeightsReading)
}

/// Why the engine moves weights; lets the runtime and the journal say so.
public enum WeightsPurpose: String, Sendable, Hashable, Codable {
    case step, promote, rollback
    /// The journaled weights written again after the load balancer restarted and forgot them.
    case reassert
}

/// The running load-balancer process that answered a read: a restart (a new process) forgets
/// every runtime weight and state (HAProxy), so it is the one drift that may be repaired without
/// asking anybody. Kept in the journaled state, so a resumed coordinator tells a restart that
/// happened while it was down from weights a person changed.
public struct LoadBalancerInstance: Sendable, Hashable, Codable, CustomStringConvertible {
    /// HAProxy: `pid N`; Envoy: its node id and hot-restart epoch.
    public var id: String
    /// When the process started, from its uptime at the read (whole seconds for HAProxy).
    public var startedAt: Instant

    public init(id: String, startedAt: Instant) {
        self.id = id
        self.startedAt = startedAt
    }

    /// True when `self` cannot be the process seen as `earlier`: another id, or a start time
    /// more than `slack` apart (uptimes are whole seconds; a container restart keeps its pid).
    public func isRestart(of earlier: LoadBalancerInstance, slack: Duration = .seconds(3)) -> Bool {
        let apart = startedAt - earlier.startedAt
        return id != earlier.id || apart > slack || apart < .zero - slack
    }

    public var description: String { "\(id), started \(startedAt.millisecondsSinceEpoch / 1000)s after the epoch" }
}

/// The live weights as one read gave them, for the engine to compare with what it journaled.
public struct LiveWeightsReading: Sendable, Hashable, Codable {
    public var at: Instant
    /// TO's effective share of the live weights (0 when every weight is 0).
    public var percentToTarget: Double
    /// FROM's and TO's live weights, summed over their servers.
    public var fromWeight: Int
    public var toWeight: Int
    public var instance: LoadBalancerInstance
    /// Servers whose weight differs from what this process applied last, as sentences (the
    /// driver's own memory; empty in a process that has applied nothing yet).
    public var drift: [String]
    /// Whether every FROM server is in the load balancer's drain state; nil where the load
    /// balancer has no drain state (Envoy: weight 0 alone keeps new requests away).
    public var fromInDrain: Bool?
    /// Load-balancer instances that did not answer this read, as sentences naming each (the
    /// rest of the reading is from those that did); empty when every one answered.
    public var unreachable: [String] = []

    public init(at: Instant, percentToTarget: Double, fromWeight: Int, toWeight: Int, instance: LoadBalancerInstance,
                drift: [String] = [], fromInDrain: Bool?, unreachable: [String] = []) {
        self.unreachable = unreachable
        self.at = at
        self.percentToTarget = percentToTarget
        self.fromWeight = fromWeight
        self.toWeight = toWeight
        self.instance = instance
        self.drift = drift
        self.fromInDrain = fromInDrain
    }
}

/// A load-balancer fault being retried (see `CutoverState.weightsRetry`).
public struct WeightsRetry: Sendable, Hashable, Codable {
    public var since: Instant
    public var lastAttemptAt: Instant
    /// What failed last, naming the instance.
    public var detail: String
    public init(since: Instant, lastAttemptAt: Instant, detail: String) {
        self.since = since
        self.lastAttemptAt = lastAttemptAt
        self.detail = detail
    }
}

/// Live weights that differ from the journal, from the first reading that showed it until one
/// shows them as journaled again. `restarted` episodes (the load balancer is a new process that
/// forgot its runtime weights) are repaired by writing the journaled weights again; weights
/// changed on the same instance were changed by someone, and are never overridden silently.
public struct DriftEpisode: Sendable, Hashable, Codable {
    public var since: Instant
    /// The load balancer restarted during the episode.
    public var restarted: Bool
    /// What differs, as sentences (the latest reading's).
    public var differences: [String]
    /// When the journaled weights (or FROM's drain state) were last written again.
    public var lastReassertAt: Instant?

    public init(since: Instant, restarted: Bool, differences: [String], lastReassertAt: Instant? = nil) {
        self.since = since
        self.restarted = restarted
        self.differences = differences
        self.lastReassertAt = lastReassertAt
    }
}

/// Something the runtime must do. The engine only returns these; it performs nothing.
///
/// The runtime journals each effectful action as an intent before performing it and its result
/// after (write-ahead), so a crash between the two is repaired on resume by re-applying it.
public enum Action: Sendable, Hashable, Codable {
    /// Run the preflight checks and answer with `.preflight`.
    case runPreflight
    /// Set the weights for `percentToTarget` (0–100) to TO, read them back, and answer with
    /// `.weightsApplied(intent:)`. At 0 every FROM server must also be out of drain.
    case setWeights(intent: Int, percentToTarget: Double, step: Int, purpose: WeightsPurpose)
    /// Evaluate the named (external, e.g. Prometheus) gates and answer with `.gateResults`.
    /// `loadBalancer` gates are judged inside the engine from the samples and never named here.
    case evaluateGates(evaluation: Int, gates: [String])
    /// Put every server of `cluster` in drain (no new traffic, existing sessions kept).
    case setDrain(cluster: String)
    /// Take every server of `cluster` out of drain (rollback after promotion).
    case setReady(cluster: String)
    /// Shut down the sessions still open to `cluster` (policy `drain.forceAfter`); once per run.
    case forceCloseSessions(cluster: String)
    /// Write this event to the journal.
    case record(EngineEvent)
    /// Tell a person (log line, progress line).
    case notify(String)
    /// Acknowledge a journaled command: accepted or refused, with why.
    case acknowledge(commandID: Int64, accepted: Bool, detail: String)
}

/// What the engine records in the journal. `kind` is the journal's `kind` column; the rest is
/// the JSON detail.
public struct EngineEvent: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        case phaseChanged, stepStarted, stepVerified, stepCompleted, gateEvaluated, gateHeld
        case rollbackStarted, rollbackVerified, hardSignal, paused, resumed, weightsMismatch
        case commandAccepted, commandRefused, drainProgress, drained, drainTimedOut, drainActivity
        case forceClose, decommissioned, staleResult
        case weightsDrift, weightsReasserted, weightsAsJournaled
        /// Webhooks: the run waits for confirmation hooks (and which answered what), they all
        /// answered 2xx, a pre-rollout hook refused, a rollback hook asked for a rollback.
        case hookWaiting, hookConfirmed, hookRefused, hookRollback
    }

    public var kind: Kind
    public var message: String
    public var phase: Phase?
    public var step: Int?
    public var gate: String?
    public var outcome: GateOutcome?
    /// Facts behind a decision (open sessions, last request, live weight, ratio, ...).
    public var evidence: [String: String]

    public init(_ kind: Kind, _ message: String, phase: Phase? = nil, step: Int? = nil, gate: String? = nil,
                outcome: GateOutcome? = nil, evidence: [String: String] = [:]) {
        self.kind = kind
        self.message = message
        self.phase = phase
        self.step = step
        self.gate = gate
        self.outcome = outcome
        self.evidence = evidence
    }
}

/// What the current step has learned about one gate since the step's weights were verified.
public struct GateProgress: Sendable, Hashable, Codable {
    public var passes: Int = 0
    public var failures: Int = 0
    /// `error` outcomes in a row; any other outcome resets it.
    public var consecutiveErrors: Int = 0
    public var last: GateOutcome?
    public init() {}
}

/// The next step waiting for webhooks (see `CutoverEngine`, "Webhooks").
public struct HookWait: Sendable, Hashable, Codable {
    public enum Stage: String, Sendable, Hashable, Codable {
        /// Asking the confirmation hooks every `interval` until each answered 2xx.
        case confirm
        /// Asking the pre-rollout hooks once: any other answer aborts the run.
        case preRollout
        /// Every hook answered 2xx: the step's weights go out at the next chance.
        case confirmed
    }
    /// The step (1-based) whose weights wait.
    public var step: Int
    public var stage: Stage
    /// Hooks that have not answered 2xx yet.
    public var waitingFor: [String]
    public var since: Instant
    /// The evaluation in flight, if any, and when the hooks were last asked.
    public var evaluation: Int?
    public var askedAt: Instant?
    /// Each hook's latest answer (`fail: HTTP 403`), for `status` and to journal changes only.
    public var answers: [String: String]

    public init(step: Int, stage: Stage, waitingFor: [String], since: Instant) {
        self.step = step
        self.stage = stage
        self.waitingFor = waitingFor
        self.since = since
        self.answers = [:]
    }
}

/// A `setWeights` action sent but not yet read back.
public struct PendingWeights: Sendable, Hashable, Codable {
    public var intent: Int
    public var percentToTarget: Double
    public var step: Int
    public var purpose: WeightsPurpose
    public var issuedAt: Instant
}

/// The whole state of a cutover; `Codable` because the runtime journals it after every input,
/// and on resume starts again from the last snapshot.
public struct CutoverState: Sendable, Hashable, Codable {
    public var phase: Phase
    /// 1-based index of the step whose weights are in place (or being put in place); 0 before
    /// the first. `policy.steps.count` at 100%.
    public var step: Int
    /// TO's share as last verified from the load balancer's read-back.
    public var percentToTarget: Double
    /// When the current step's weights were verified: its bake runs from here. Nil while its
    /// weights are not yet verified (and while paused: the bake restarts on resume).
    public var stepStartedAt: Instant?
    /// Per gate name, what this step has seen.
    public var gates: [String: GateProgress]
    /// True after a manual `promote`: the 100% step then completes on its bake alone, with gates
    /// still watched for failures (a failure still rolls back), since the person chose to skip
    /// the evidence the remaining steps would have gathered.
    public var manuallyPromoted: Bool
    public var pendingWeights: PendingWeights?
    /// Increments with every `setWeights`; the read-back must echo it.
    public var lastIntent: Int
    /// Increments with every `evaluateGates`.
    public var lastEvaluation: Int
    /// Results of evaluations numbered at or below this belong to an earlier step.
    public var staleEvaluationsUpTo: Int
    public var lastEvaluationAt: Instant?
    /// The latest load-balancer sample, kept so the next one gives a window.
    public var lastSample: LoadBalancerSample?
    /// Per `loadBalancer` gate, the sample its previous evaluation ended at.
    public var gateWindowStart: [String: LoadBalancerSample]
    /// Where `paused` came from and why; `resume` returns there.
    public var pausedFrom: Phase?
    public var reason: String?
    /// True once a rollback's weights read back at 0% to TO.
    public var rollbackVerified: Bool
    public var drain: DrainState?
    public var promotedAt: Instant?
    public var decommissionedAt: Instant?
    /// The inconclusive gates last reported as holding the step, so the journal gets one
    /// `gateHeld` event per change rather than one per tick.
    public var heldReported: [String]
    /// The load-balancer process that last read back the journaled weights (see
    /// `LoadBalancerInstance`); nil before the first reading, and in journals written before it.
    public var loadBalancer: LoadBalancerInstance?
    /// Live weights that differ from the journal right now; nil when they agree.
    public var drift: DriftEpisode?
    /// The percentage the last verified weights were asked for (`percentToTarget` is what they
    /// came to): what writing them again asks for.
    public var appliedPercent: Double?
    /// The step those weights belong to (with waves, the step says which service is where).
    public var appliedStep: Int?
    /// Set while the run is paused because the load balancer failed (an instance did not answer,
    /// answered with an error, or read back other weights): the coordinator keeps writing the
    /// step's weights again and resumes the step's bake once every instance reads them back.
    public var weightsRetry: WeightsRetry?
    /// Set while the next step's weights wait for webhooks (confirmation hooks, then before the
    /// first step the pre-rollout hooks); nil otherwise.
    public var hookWait: HookWait?
    /// True once every pre-rollout hook answered 2xx (they are called once per run).
    public var preRolloutPassed: Bool?
    /// The evaluation number of the rollback hooks' poll in flight, and when they were last asked.
    public var rollbackPoll: Int?
    public var rollbackPolledAt: Instant?

    /// A run that has not started.
    public static let initial = CutoverState(
        phase: .pending, step: 0, percentToTarget: 0, stepStartedAt: nil, gates: [:], manuallyPromoted: false,
        pendingWeights: nil, lastIntent: 0, lastEvaluation: 0, staleEvaluationsUpTo: 0, lastEvaluationAt: nil,
        lastSample: nil, gateWindowStart: [:], pausedFrom: nil, reason: nil, rollbackVerified: false, drain: nil,
        promotedAt: nil, decommissionedAt: nil, heldReported: [])

    /// Gates that keep the step from advancing because they have not passed since it began and
    /// their latest outcome was `inconclusive`: `status` shows "held by inconclusive gates X".
    public var heldByInconclusiveGates: [String] {
        gates.filter { $0.value.passes == 0 && $0.value.last?.verdict == .inconclusive }.map(\.key).sorted()
    }

    /// What the load balancer's weights last read back as, for messages that must not claim more:
    /// `live weights read 100% to green at <time>`, from the latest sample.
    public func lastReadBack(from: String, to: String) -> String {
        guard let sample = lastSample, let f = sample.clusters[from]?.weight, let t = sample.clusters[to]?.weight else {
            return "live weights not read back yet"
        }
        let share = f + t == 0 ? "no weight on either cluster" : "\(formatNumber(100 * Double(t) / Double(f + t)))% to \(to)"
        return "live weights last read back \(share) (\(from) \(f), \(to) \(t)) at \(sample.at.iso8601)"
    }

    /// The hooks the next step's weights wait for (empty when nothing waits): `status` and the
    /// progress line say "waiting for approve".
    public var waitingForHooks: [String] {
        guard let wait = hookWait, wait.stage != .confirmed else { return [] }
        return wait.waitingFor
    }

    /// Gates that have not passed since the step began (for any reason, including not yet evaluated).
    public var gatesWithoutPass: [String] {
        gates.filter { $0.value.passes == 0 }.map(\.key).sorted()
    }
}
