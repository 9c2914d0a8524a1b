import Foundation

/// Times async operations on a thread of its own, so a stopwatch measures the operation and not
/// the cooperative pool's queue.
///
/// Tests run in parallel: while one test times how fast a refused connection fails, other tests
/// may hold both threads of the pool with CPU work for a few hundred milliseconds (a YAML bomb
/// parsed, a weight table searched, an RSA key made). An operation timed on the pool waits for a
/// free thread before its continuation can read the clock, and the figure grows by that wait.
/// `measure` runs the body with a task executor preference for one dedicated thread: the body,
/// every nonisolated async function it awaits and its child tasks run there, and so does the
/// reading of the clock when the operation returns. What runs on that thread is only ever
/// waiting on something else (a socket, a timer, a child process) or timing it, so it is never
/// busy when the clock is read.
public enum Stopwatch {
    /// Runs `body` on the stopwatch's thread and returns its result with how long it took.
    public static func measure<T>(_ body: () async throws -> T) async rethrows -> (T, Duration) {
        try await withTaskExecutorPreference(StopwatchExecutor.shared) {
            let start = ContinuousClock.now
            let value = try await body()
            return (value, ContinuousClock.now - start)
        }
    }
}

/// One thread that runs the jobs enqueued to it, in order: the task executor the stopwatch's
/// bodies prefer. It lives as long as the test process.
///
/// `@unchecked Sendable`: `jobs` is only touched under `condition`'s lock.
final class StopwatchExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = StopwatchExecutor()

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    private init() {
        let thread = Thread { [unowned self] in self.runJobs() }
        thread.name = "testkit: stopwatch"
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.withLock {
            jobs.append(job)
            condition.signal()
        }
    }

    private func runJobs() {
        while true {
            let job: UnownedJob = condition.withLock {
                while jobs.isEmpty { condition.wait() }
                return jobs.removeFirst()
            }
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
