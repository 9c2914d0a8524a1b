/// Which percentage each service is at, step by step: the policy's `steps`, walked once per
/// wave (`waves`). With one service, or several in one wave, it is the policy's steps as
/// written; with waves [[cart], [checkout, search]] and steps [10, 50, 100], step 1 is cart at
/// 10%, step 3 cart at 100%, step 4 cart at 100% and checkout and search at 10%, and so on: a
/// wave walks every step, then the next starts, and earlier waves stay at 100%.
///
/// The engine counts steps across waves (1-based, 0 before the first); rollback is step 0
/// (every service at 0%), the last step has every service at 100%. The one place that turns a
/// step into per-service percentages: the engine, `plan` and the fleet router all ask it.
public struct StepSchedule: Sendable, Hashable {
    /// The policy's steps, walked by each wave.
    public let steps: [Double]
    /// Services moved together, in order: `[services]` without waves, `[[]]` in the single form.
    public let waves: [[String]]
    /// Every service, in the load balancer's order; empty in the single form.
    public let services: [String]

    public init(steps: [Double], services: [String]?, waves: [[String]]?) {
        precondition(!steps.isEmpty, "a schedule has at least one step")
        self.steps = steps
        self.services = services ?? []
        if let waves, !waves.isEmpty {
            self.waves = waves
        } else {
            self.waves = [self.services]
        }
    }

    public init(policy: Policy) {
        self.init(steps: policy.steps, services: policy.loadBalancer.services, waves: policy.waves)
    }

    /// Steps across every wave.
    public var count: Int { steps.count * waves.count }

    /// True with more than one wave.
    public var hasWaves: Bool { waves.count > 1 }

    /// The 0-based wave of 1-based step `step` (the last wave at or past the end, the first
    /// before the first step).
    public func wave(atStep step: Int) -> Int {
        guard step > 0 else { return 0 }
        return min((min(step, count) - 1) / steps.count, waves.count - 1)
    }

    /// The policy's percentage the current wave is at, at step `step` (0 before the first).
    public func wavePercent(atStep step: Int) -> Double {
        guard step > 0 else { return 0 }
        return steps[(min(step, count) - 1) % steps.count]
    }

    /// Every service's percentage to TO at step `step`; `[:]` in the single form.
    public func percents(atStep step: Int) -> [String: Double] {
        var result: [String: Double] = [:]
        let current = wave(atStep: step)
        let percent = wavePercent(atStep: step)
        for (index, wave) in waves.enumerated() {
            for service in wave {
                result[service] = step <= 0 ? 0 : index < current ? 100 : index == current ? percent : 0
            }
        }
        return result
    }

    /// One number for the step: the policy's percentage in the single form or one wave (as
    /// written); with waves, the mean over services (each service counts once), so that it
    /// grows with every step and is 100 only when every service is.
    public func percent(atStep step: Int) -> Double {
        guard hasWaves else { return wavePercent(atStep: step) }
        let all = percents(atStep: step)
        return all.isEmpty ? 0 : all.values.reduce(0, +) / Double(all.count)
    }

    /// The services whose TO receives traffic at step `step` (earlier waves and the current
    /// one); every service in one wave, `[]` in the single form.
    public func moving(atStep step: Int) -> [String] {
        let percents = percents(atStep: step)
        return services.filter { (percents[$0] ?? 0) > 0 }
    }

    /// "wave 2 of 2 (checkout, search) at 10%" for messages; nil without waves.
    public func describe(step: Int) -> String? {
        guard hasWaves, step > 0 else { return nil }
        let index = wave(atStep: step)
        return "wave \(index + 1) of \(waves.count) (\(waves[index].joined(separator: ", "))) at \(formatNumber(wavePercent(atStep: step)))%"
    }
}
