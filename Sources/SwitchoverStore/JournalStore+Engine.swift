import Foundation
import SwitchoverCore

/// Typed conveniences over the journal for the engine's own types, so the runtime journals
/// `EngineEvent`s, `Action` intents and `CutoverState` snapshots in one agreed JSON form.
extension JournalStore {
    /// Appends an engine event: its kind in the `kind` column, the whole event as JSON detail.
    @discardableResult
    public func append(run: Int64, at: Instant, _ event: EngineEvent, fence: Int64? = nil) throws -> Int64 {
        try append(JournalEvent(run: run, at: at, kind: event.kind.rawValue, detail: JournalJSON.encode(event)), fence: fence)
    }

    /// Writes the intent of an action before it is performed: `action` is the case name
    /// (`setWeights`, ...), the detail the action as JSON; with it, atomically, `state` (the
    /// state that expects the action's result), only while `fence` is the current lease token.
    public func beginIntent(run: Int64, at: Instant, _ action: Action, state: CutoverState? = nil,
                            fence: Int64? = nil) throws -> Int64 {
        try beginIntent(run: run, at: at, action: action.journalName, detail: JournalJSON.encode(action),
                        state: try state.map(JournalJSON.encode), fence: fence)
    }

    /// The action an unfinished intent was about, decoded back.
    public func action(ofIntent event: JournalEvent) throws -> Action {
        do {
            return try JSONDecoder().decode(IntentWrapper.self, from: Data(event.detail.utf8)).detail
        } catch {
            throw StoreError(.corrupt, "intent \(event.sequence) does not hold an action: \(error)")
        }
    }

    public func saveState(run: Int64, at: Instant, _ state: CutoverState, fence: Int64? = nil) throws {
        try saveState(run: run, at: at, json: JournalJSON.encode(state), fence: fence)
    }

    /// One sampling turn's observation, at observation durability (see
    /// `recordObservation(run:at:sample:state:fence:)`).
    public func recordObservation(run: Int64, at: Instant, sample: LoadBalancerSample?, state: CutoverState?,
                                  fence: Int64? = nil) throws {
        try recordObservation(run: run, at: at, sample: sample, state: state.map(JournalJSON.encode), fence: fence)
    }

    public func loadCutoverState(run: Int64) throws -> CutoverState? {
        guard let (_, json) = try loadState(run: run) else { return nil }
        do {
            return try JSONDecoder().decode(CutoverState.self, from: Data(json.utf8))
        } catch {
            throw StoreError(.corrupt, "run \(run): the engine state snapshot does not decode: \(error)")
        }
    }

    /// Journals a gate evaluation from an engine event of kind `gateEvaluated`.
    public func recordGateEvaluation(run: Int64, at: Instant, _ event: EngineEvent) throws {
        guard event.kind == .gateEvaluated, let gate = event.gate, let outcome = event.outcome else { return }
        try recordGateEvaluation(GateEvaluationRecord(run: run, at: at, step: event.step ?? 0, gate: gate, outcome: outcome))
    }
}

/// The detail of an `intent` row: `{"action": name, "detail": <the action as JSON>}`.
private struct IntentWrapper: Decodable {
    var action: String
    var detail: Action
}

/// The one JSON form of the journal: sorted keys, so equal values give equal text.
public enum JournalJSON {
    public static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

extension Action {
    /// The case name, for the journal's intent rows.
    public var journalName: String {
        switch self {
        case .runPreflight: "runPreflight"
        case .setWeights: "setWeights"
        case .evaluateGates: "evaluateGates"
        case .setDrain: "setDrain"
        case .setReady: "setReady"
        case .forceCloseSessions: "forceCloseSessions"
        case .record: "record"
        case .notify: "notify"
        case .acknowledge: "acknowledge"
        }
    }
}
