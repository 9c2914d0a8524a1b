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

        public init(number: Int, percent: Double, weights: WeightAssignment, cumulative: Duration) {
            self.number = number
            self.percent = percent
            self.weights = weights
            self.cumulative = cumulative
        }

        /// What the integer weights really send to TO, in percent.
        public var effectivePercent: Double { weights.effectivePercentToTarget }
    }

    public var from: String
    public var to: String
    public var policy: String
    public var driver: String
    public var steps: [Step]

    public init(from: Cluster, to: Cluster, policy: Policy) {
        self.from = from.name
        self.to = to.name
        self.policy = policy.name
        self.driver = policy.loadBalancer.driverName
        // The driver's own range (its description), as the runtime will write it.
        let translation = policy.loadBalancer.weightTranslation
        steps = policy.steps.enumerated().map { index, percent in
            Step(number: index + 1, percent: percent,
                 weights: translation.weights(percentToTarget: percent, from: from.loadBalancer.servers,
                                              to: to.loadBalancer.servers),
                 cumulative: policy.bake * (index + 1))
        }
    }

    /// The whole shifting if every gate passes at once: one bake per step.
    public var expected: Duration { steps.last?.cumulative ?? .zero }
}
