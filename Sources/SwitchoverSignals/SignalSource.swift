import SwitchoverCore

/// Something that judges one external gate when asked: the runtime calls `evaluate` every
/// `policy.interval` for each gate the engine names in an `evaluateGates` action.
///
/// An evaluation never throws: a source that cannot answer (unreachable, timed out, a bad
/// answer) returns an `error` outcome saying why, because the engine must tell "the signal is
/// down" (pause after a few) from "TO is bad" (roll back). Implementations keep their own
/// deadline short, so a source that hangs costs one interval, never the sampling loop.
public protocol SignalSource: Sendable {
    /// The gate's name in the policy.
    var gate: String { get }
    func evaluate() async -> GateOutcome
}

/// The sources for every external gate of `policy` (today: `prometheus`), keyed by gate name.
/// `loadBalancer` gates have none: the engine judges them from the sampler's samples.
public func makeSignalSources(policy: Policy, client: PrometheusQuerying) -> [String: any SignalSource] {
    var sources: [String: any SignalSource] = [:]
    for gate in policy.gates {
        if case .prometheus(let spec) = gate.source {
            sources[gate.name] = PrometheusGateSource(gate: gate.name, spec: spec, client: client)
        }
    }
    return sources
}
