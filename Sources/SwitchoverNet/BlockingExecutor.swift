import Dispatch

/// Runs blocking calls (curl_easy_perform, poll/connect/recv on sockets) on Dispatch threads,
/// never on the Swift concurrency cooperative pool: that pool has one thread per core (two on
/// the target machine), so a single blocked 5 s request there would stall every task.
///
/// Each call gets its own serial queue. Serial queues target Dispatch's overcommit root queue,
/// which starts another thread whenever all of its threads are busy; a shared concurrent queue
/// does not (on Linux its width is about the core count), so a few slow transfers would hold
/// up every other one, an HAProxy command behind a hanging Prometheus query. Idle threads are
/// reused, so the cost per call is a queue object, not a thread.
public enum BlockingExecutor {
    /// Runs `work` on a Dispatch thread and resumes the caller with its result.
    public static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            DispatchQueue(label: "switchover.net.blocking", qos: .userInitiated).async {
                continuation.resume(with: Result { try work() })
            }
        }
    }
}
