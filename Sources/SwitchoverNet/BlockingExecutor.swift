import Dispatch

/// Runs blocking calls (curl_easy_perform, poll/connect/read on sockets) on Dispatch threads,
/// never on the Swift concurrency cooperative pool: that pool has one thread per core (two on
/// the target machine), so a single blocked 5 s request there would stall every task.
///
/// The queue is concurrent so independent clients do not wait for each other; Dispatch adds
/// threads when work items block.
enum BlockingExecutor {
    private static let queue = DispatchQueue(label: "switchover.net.blocking", qos: .userInitiated,
                                             attributes: .concurrent)

    /// Runs `work` on the blocking queue and resumes the caller with its result.
    static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            queue.async {
                continuation.resume(with: Result { try work() })
            }
        }
    }
}
