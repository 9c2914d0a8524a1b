/// A failure of the coordinator itself (the journal could not be written, a stored state could
/// not be read), with what it was doing. Gate failures and refusals are not errors: they are
/// outcomes.
public struct RuntimeError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case journal, corruptState, loadBalancer, refused
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        /// Reading or writing the journal failed.
        public static let journal = Code(.journal)
        /// A journaled state snapshot could not be decoded.
        public static let corruptState = Code(.corruptState)
        /// The load balancer could not be reached or refused what was asked.
        public static let loadBalancer = Code(.loadBalancer)
        /// The request cannot be carried out as things stand; `message` says why.
        public static let refused = Code(.refused)
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
