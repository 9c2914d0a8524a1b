import Foundation
import Logging
import SwitchoverCore

/// What the coordinator tells a person. Two shapes, chosen by the CLI: a live progress line on a
/// terminal (`TerminalReporter`), one log line per event in a pipe (`LogReporter`). The journal
/// has everything either way.
public protocol Reporter: Sendable {
    /// An engine event was journaled.
    func event(_ event: EngineEvent, at: Instant)
    /// A sentence for people (the engine's `notify`).
    func notify(_ message: String)
    /// The coordinator's own journaled events (started, stopped, intent re-applied, ...).
    func note(kind: String, _ message: String)
    /// The state after an input; a terminal redraws its progress line from it. Built only by a
    /// reporter that shows it (several times per sampling turn: not for a log).
    func progress(_ progress: @autoclosure () -> ProgressSnapshot)
    /// The coordinator is done: a terminal's progress line is cleared; `line`, when given, is
    /// the last thing said (the CLI prints the verdict itself, on stdout).
    func finish(_ line: String?)
}

/// What the progress line shows.
public struct ProgressSnapshot: Sendable, Hashable {
    public var phase: Phase
    public var step: Int
    public var steps: Int
    public var percentToTarget: Double
    public var to: String
    /// Nil when no bake runs (weights not yet verified, paused).
    public var bakeRemaining: Duration?
    /// Latest outcome per gate, by name.
    public var lastOutcomes: [String: GateVerdict]
    public var heldBy: [String]
    /// Hooks the next step waits for.
    public var waitingFor: [String]
    public var reason: String?
    /// FROM's drain while `draining` or `drained`: open sessions, hold, ETA, DNS TTL wait.
    public var drain: DrainView?
    /// With waves: which wave and services the step moves, `wave 2 of 2 (checkout, search) at 10%`.
    public var wave: String?
    /// The state's latest load-balancer sample: the weights read back with it and when it was
    /// taken (what `/metrics` shows; see `MetricsReporter`).
    public var sample: LoadBalancerSample?

    public init(state: CutoverState, policy: Policy, to: String, now: Instant) {
        phase = state.phase
        step = state.step
        let schedule = StepSchedule(policy: policy)
        steps = schedule.count
        wave = schedule.describe(step: state.step)
        percentToTarget = state.percentToTarget
        self.to = to
        if let started = state.stepStartedAt, state.phase == .shifting {
            let left = (started + policy.bake) - now
            bakeRemaining = left < .zero ? .zero : left
        }
        lastOutcomes = state.gates.compactMapValues { $0.last?.verdict }
        heldBy = state.heldByInconclusiveGates
        waitingFor = state.waitingForHooks
        reason = state.reason
        sample = state.lastSample
        if state.phase == .draining || state.phase == .drained {
            drain = DrainView(state: state, policy: policy, now: now)
        }
    }

    /// `step 3 of 5 · 25% to green · bake 12s left · gates: errors=pass latency=inconclusive · held by inconclusive gates latency`
    public var line: String {
        var parts = ["\(phase.rawValue)", "step \(step) of \(steps)", "\(format(percentToTarget))% to \(to)"]
        if let wave { parts.append(wave) }
        if let bakeRemaining { parts.append("bake \(format((bakeRemaining.secondsValue * 10).rounded() / 10))s left") }
        if !lastOutcomes.isEmpty {
            parts.append("gates: " + lastOutcomes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.rawValue)" }
                .joined(separator: " "))
        }
        if !heldBy.isEmpty { parts.append("held by inconclusive gates \(heldBy.joined(separator: ", "))") }
        if !waitingFor.isEmpty { parts.append("waiting for \(waitingFor.joined(separator: ", "))") }
        if phase == .paused, let reason { parts.append(reason) }
        if phase == .draining, let drain { parts.append(drain.summary) }
        return parts.joined(separator: " · ")
    }
}

/// One log line per event (swift-log), for pipes and files.
public struct LogReporter: Reporter {
    public let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    public func event(_ event: EngineEvent, at: Instant) {
        var metadata: Logger.Metadata = ["kind": "\(event.kind.rawValue)"]
        if let step = event.step { metadata["step"] = "\(step)" }
        if let gate = event.gate { metadata["gate"] = "\(gate)" }
        if let outcome = event.outcome { metadata["verdict"] = "\(outcome.verdict.rawValue)" }
        for (key, value) in event.evidence { metadata[key] = "\(value)" }
        let level: Logger.Level = event.kind == .gateEvaluated && event.outcome?.verdict == .pass ? .debug : .info
        logger.log(level: level, "\(event.message)", metadata: metadata)
    }

    public func notify(_ message: String) { logger.notice("\(message)") }
    public func note(kind: String, _ message: String) { logger.info("\(message)", metadata: ["kind": "\(kind)"]) }
    public func progress(_ progress: @autoclosure () -> ProgressSnapshot) {}
    public func finish(_ line: String?) { if let line { logger.notice("\(line)") } }
}

/// A live progress line on a terminal (stderr), redrawn in place, with the events that matter
/// (phase changes, steps, rollbacks, pauses, commands) printed above it.
///
/// `@unchecked Sendable`: the last line drawn is guarded by `lock`.
public final class TerminalReporter: Reporter, @unchecked Sendable {
    private let lock = NSLock()
    private var current = ""
    private let handle = FileHandle.standardError
    private static let shown: Set<EngineEvent.Kind> = [
        // `hardSignal` is left out: the `rollbackStarted` that follows says the same.
        .phaseChanged, .stepStarted, .stepVerified, .stepCompleted, .rollbackStarted, .rollbackVerified,
        .paused, .resumed, .weightsMismatch, .commandAccepted, .commandRefused, .gateHeld,
        .drained, .drainActivity, .drainTimedOut, .forceClose, .decommissioned,
        .hookWaiting, .hookConfirmed, .hookRefused, .hookRollback,
    ]

    public init() {}

    public func event(_ event: EngineEvent, at: Instant) {
        let failed = event.kind == .gateEvaluated && (event.outcome?.verdict == .fail || event.outcome?.verdict == .error)
        guard Self.shown.contains(event.kind) || failed else { return }
        printAbove("\(Self.clock(at)) \(event.message)")
    }

    public func notify(_ message: String) { printAbove(message) }
    public func note(kind: String, _ message: String) { printAbove(message) }

    public func progress(_ progress: @autoclosure () -> ProgressSnapshot) {
        let line = progress().line
        lock.withLock {
            current = line
            write("\r\u{1B}[2K" + current)
        }
    }

    public func finish(_ line: String?) {
        lock.withLock {
            write("\r\u{1B}[2K" + (line.map { $0 + "\n" } ?? ""))
            current = ""
        }
    }

    private func printAbove(_ line: String) {
        lock.withLock { write("\r\u{1B}[2K" + line + "\n" + current) }
    }

    private func write(_ text: String) { handle.write(Data(text.utf8)) }

    static func clock(_ at: Instant) -> String {
        UTCTimestamp.timeOfDay(millisecondsSinceEpoch: at.millisecondsSinceEpoch)
    }
}
