import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How the test kit waits without holding a thread of Swift's cooperative pool.
///
/// Tests run in parallel (`scripts/test`): every suite's async code shares one cooperative pool
/// with a thread per core, two on this machine. A wait that blocks its thread there (`usleep`,
/// `Process.waitUntilExit`, a `recv` on a socket) holds a third or half of every other test's
/// time: their coordinators' in-process ticks, their stopwatches and their polls all queue behind
/// it. So the kit waits in one of two ways:
/// - **polling** (is the port open, has the process exited, does the journal say so):
///   `Wait.until`, which checks and then suspends with `Task.sleep`, leaving the thread to others;
/// - **a call that can only block** (`waitpid` under `Process.waitUntilExit`, reading a pipe to its
///   end, a socket `recv`): `OwnThread.run`, which makes it on a thread of its own, outside the
///   pool, and suspends the caller until it returns.
public enum Wait {
    /// Evaluates `condition` until it holds or `timeout` seconds have passed, suspending for
    /// `interval` between evaluations; true when it held. `condition` is evaluated once more at
    /// the deadline, so a slow last sleep cannot turn a success into a timeout.
    @discardableResult
    public static func until(timeout: TimeInterval, every interval: Duration = .milliseconds(10),
                             _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            await pause(interval)
        }
        return try await condition()
    }

    /// `Task.sleep` that always sleeps: in a cancelled task (a test's cleanup after it was
    /// cancelled) it sleeps in a detached task, so a stop's SIGKILL still comes `grace` later
    /// instead of at once, and a poll does not spin.
    public static func pause(_ interval: Duration) async {
        if Task.isCancelled {
            await Task.detached { try? await Task.sleep(for: interval) }.value
        } else {
            try? await Task.sleep(for: interval)
        }
    }
}

/// Runs a call that can only block (a child process waited for to its end, a pipe read to EOF,
/// a socket `recv`) on a new thread of its own and suspends the caller until it returns; the
/// cooperative pool's threads stay free meanwhile. A thread per call: these calls are few (tens
/// per test) and each lasts milliseconds to seconds, so a pool of threads would save nothing.
public enum OwnThread {
    public static func run<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let thread = Thread {
                continuation.resume(with: Result { try body() })
            }
            thread.name = "testkit: \(name)"
            thread.start()
        }
    }

    /// The same for a call that cannot throw.
    public static func run<T: Sendable>(_ name: String, _ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            let thread = Thread {
                continuation.resume(returning: body())
            }
            thread.name = "testkit: \(name)"
            thread.start()
        }
    }
}
