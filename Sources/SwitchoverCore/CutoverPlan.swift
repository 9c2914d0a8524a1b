import Foundation

/// What a switchover will do, step by step, before it does it: the integer weights each
/// load-balancer server gets, the share of traffic those integers really send to TO, and when
/// each step is expected to end if every gate passes. `plan` prints it; the runtime applies the
/// same weights, from this one computation.
public struct CutoverPlan: Sendable, Hashable {
    /// One step of the plan.
    public struct Step: Sendable, Hashable {
        /// 1-based, as people count steps.
        public var number: Int
        /// The policy's percentage of traffic to TO.
        public var percent: Double
        public var weights: WeightAssignment
        /// Time from the start of the shifting until this step's bake ends.
        public var cumulative: Duration
        /// Several services: each one's percentage and weights (every server's weight is in
        /// `weights` too); empty in the single form.
        public var services: [ServiceStep] = []
        /// With waves, "wave 1 of 2 (cart) at 10%"; nil otherwise.
        public var wave: String?

        public init(number: Int, percent: Double, weights: WeightAssignment, cumulative: Duration) {
            self.number = number
            self.percent = percent
            self.weights = weights
            self.cumulative = cumulative
        }

        /// What the integer weights really send to TO, in percent (with waves, the mean over
        /// services, as the runtime reads it back).
        public var effectivePercent: Double {
            guard wave != nil, !services.isEmpty else { return weights.effectivePercentToTarget }
            return services.map(\.effectivePercent).reduce(0, +) / Double(services.count)
        }
    }

    /// One service at one step.
    public struct ServiceStep: Sendable, Hashable {
        public var service: String
        public var percent: Double
        public var weights: WeightAssignment
        public var effectivePercent: Double { weights.effectivePercentToTarget }
    }

    public var from: String
    public var to: String
    public var policy: String
    public var driver: String
    public var steps: [Step]
    /// The load-balancer instances every step's weights are written to (one in the single form).
    public var instances: [String]

    public init(from: Cluster, to: Cluster, policy: Policy) {
        self.from = from.name
        self.to = to.name
        self.policy = policy.name
        self.driver = policy.loadBalancer.driverName
        self.instances = policy.loadBalancer.instances
        // The driver's own range (its description), as the runtime will write it.
        let translation = policy.loadBalancer.weightTranslation
        let schedule = StepSchedule(policy: policy)
        guard !schedule.services.isEmpty else {
            steps = policy.steps.enumerated().map { index, percent in
                Step(number: index + 1, percent: percent,
                     weights: translation.weights(percentToTarget: percent,
                                                  from: from.loadBalancer.servers(for: policy.loadBalancer.driver),
                                                  to: to.loadBalancer.servers(for: policy.loadBalancer.driver)),
                     cumulative: policy.bake * (index + 1))
            }
            return
        }
        // Each service is a backend of its own: its servers' weights are translated apart.
        steps = (1...schedule.count).map { number in
            let percents = schedule.percents(atStep: number)
            let services = schedule.services.map { service in
                ServiceStep(service: service, percent: percents[service] ?? 0,
                            weights: translation.weights(percentToTarget: percents[service] ?? 0,
                                                         from: from.loadBalancer.servers(of: service) ?? [],
                                                         to: to.loadBalancer.servers(of: service) ?? []))
            }
            var step = Step(number: number, percent: schedule.percent(atStep: number),
                            weights: WeightAssignment(from: services.flatMap(\.weights.from), to: services.flatMap(\.weights.to)),
                            cumulative: policy.bake * number)
            step.services = services
            step.wave = schedule.describe(step: number)
            return step
        }
    }

    /// The whole shifting if every gate passes at once: one bake per step.
    public var expected: Duration { steps.last?.cumulative ?? .zero }
}
