import Foundation

/// Any failure of a load-balancer driver: which load balancer, at which address, what it was
/// asked and what it answered, so that an operator can act on the message alone.
public struct LoadBalancerError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as a value callers can compare (`error.code == .readBackMismatch`).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case unreachable, timeout, commandFailed, badResponse, unknownServer, unknownCluster
            case readBackMismatch, rejected, unsupported, unknownDriver, invalidConfiguration, invalidWeight
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// Could not connect, or the connection broke.
        public static let unreachable = Code(.unreachable)
        /// Connected, but no (complete) answer within the deadline; or a new route version that
        /// did not go live within the deadline.
        public static let timeout = Code(.timeout)
        /// The load balancer refused a command (HAProxy's runtime API said so).
        public static let commandFailed = Code(.commandFailed)
        /// An answer the driver could not read (a CSV without the expected columns, bad JSON).
        public static let badResponse = Code(.badResponse)
        /// A server (HAProxy) or cluster (Envoy) the load balancer does not have.
        public static let unknownServer = Code(.unknownServer)
        /// A cluster name that is neither FROM nor TO.
        public static let unknownCluster = Code(.unknownCluster)
        /// The weights read back after a write differ from those written.
        public static let readBackMismatch = Code(.readBackMismatch)
        /// The load balancer rejected a new configuration (Envoy `update_rejected`); the previous
        /// one stays live.
        public static let rejected = Code(.rejected)
        /// The load balancer has no such notion (drain on Envoy).
        public static let unsupported = Code(.unsupported)
        /// A driver name no driver answers to.
        public static let unknownDriver = Code(.unknownDriver)
        /// The clusters or policy cannot be driven as given (no servers, a server in both).
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// A weight outside the load balancer's range, or a server of neither cluster.
        public static let invalidWeight = Code(.invalidWeight)

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// The driver: `haproxy`, `envoy`.
    public let driver: String
    /// Where it was reached: socket path, `tcp://host:port`, admin URL, route file.
    public let address: String
    /// The server concerned, if any.
    public let server: String?
    /// The weight the driver meant to set, for `.readBackMismatch`.
    public let intended: Int?
    /// The weight the load balancer holds, for `.readBackMismatch`.
    public let live: Int?
    /// What the load balancer answered, verbatim (trimmed), when it answered.
    public let answer: String?
    public let message: String

    public init(_ code: Code, driver: String, address: String, server: String? = nil, intended: Int? = nil,
                live: Int? = nil, answer: String? = nil, message: String) {
        self.code = code
        self.driver = driver
        self.address = address
        self.server = server
        self.intended = intended
        self.live = live
        self.answer = answer.map { String($0.trimmingCharacters(in: .whitespacesAndNewlines).prefix(2000)) }
        self.message = message
    }

    public var description: String {
        var text = "\(driver) at \(address): \(message)"
        if let answer, !answer.isEmpty { text += " (answered: \(answer))" }
        return text
    }
}
