/// Every error SwitchoverStore throws: a code to match on and the context a person needs (the
/// file, the SQL step that failed, SQLite's own message, the lock's holder).
public struct StoreError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure; compare with the static constants.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String {
            case open, sqlite, lockHeld, lock, corrupt, fenced, unavailable, etcd
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The journal file could not be opened or set up (WAL, schema).
        public static let open = Code(.open)
        /// A statement failed (SQLite's message is in the context).
        public static let sqlite = Code(.sqlite)
        /// Another coordinator holds the journal's lock; the context names its PID and start time.
        public static let lockHeld = Code(.lockHeld)
        /// The lock file could not be created, locked or written.
        public static let lock = Code(.lock)
        /// A stored row could not be decoded.
        public static let corrupt = Code(.corrupt)
        /// The writer's fencing token is no longer the journal's: another coordinator took the
        /// lease. Nothing was written.
        public static let fenced = Code(.fenced)
        /// The journal's store cannot be reached, or cannot write (etcd without quorum): nothing
        /// is known to be written. Transient: a coordinator holds still and asks again.
        public static let unavailable = Code(.unavailable)
        /// etcd answered with an error that waiting will not cure (etcd's message is in the
        /// context).
        public static let etcd = Code(.etcd)

        public var description: String { value.rawValue }
    }

    public let code: Code
    public let context: String

    public init(_ code: Code, _ context: String) {
        self.code = code
        self.context = context
    }

    public var description: String { "\(code): \(context)" }
}
