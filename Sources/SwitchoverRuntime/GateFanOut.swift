import SwitchoverCore
import SwitchoverSignals

/// Evaluates the engine's external gates (Prometheus, ...) concurrently, off the sampling loop:
/// each `evaluateGates` action becomes one child task that asks every named source at once and
/// hands the sorted results back. A source that hangs costs its own deadline, never a sample.
struct GateFanOut: Sendable {
    let sources: [String: any SignalSource]

    /// Starts the evaluation in `group`; `deliver` gets `.gateResults(evaluation:results:)`.
    func start(evaluation: Int, gates: [String], in group: inout ThrowingDiscardingTaskGroup<any Error>,
               deliver: @escaping @Sendable (EngineInput) async -> Void) {
        let chosen = gates.map { ($0, sources[$0]) }
        group.addTask {
            await deliver(.gateResults(evaluation: evaluation, results: await Self.evaluate(chosen)))
        }
    }

    /// Every gate's outcome, sorted by gate; a gate with no source is an `error` saying so.
    static func evaluate(_ chosen: [(String, (any SignalSource)?)]) async -> [GateResult] {
        await withTaskGroup(of: GateResult.self, returning: [GateResult].self) { inner in
            for (gate, source) in chosen {
                inner.addTask {
                    guard let source else { return GateResult(gate: gate, outcome: .error("no signal source for gate \(gate)")) }
                    return GateResult(gate: gate, outcome: await source.evaluate())
                }
            }
            var all: [GateResult] = []
            for await result in inner { all.append(result) }
            return all.sorted { $0.gate < $1.gate }
        }
    }
}
