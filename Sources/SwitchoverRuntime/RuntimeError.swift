/// A failure of the runtime itself that is neither the journal's (`StoreError`) nor the load
/// balancer's (`LoadBalancerError`), with what it was doing. Gate failures and refusals are not
/// errors: they are outcomes.
public struct RuntimeError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case loadBalancer
            case metricsAddress, metricsBind
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        /// The load balancer did not end where it was asked to (a read-back that differs).
        public static let loadBalancer = Code(.loadBalancer)
        /// `--metrics-address` is not HOST:PORT.
        public static let metricsAddress = Code(.metricsAddress)
        /// `/metrics` cannot listen on the address given (in use, not this machine's).
        public static let metricsBind = Code(.metricsBind)
        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
