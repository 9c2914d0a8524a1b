import Foundation
import SwitchoverCore

/// The sampling loop's reads of a router whose API has an account-wide rate limit (Route53
/// allows five requests a second per AWS account, shared with external-dns and every other
/// tool; the ELB API throttles Describe calls per account and region), while the loop asks for
/// the live weights every 250 ms.
///
/// - The loop is answered from the reading held (`value`), never kept waiting on the API once
///   there is one: when the reading is `every` old, one read goes out in the background, and
///   the loop gets the held reading meanwhile (with the time it was really read). At most one
///   read is in flight, and reads start at most once per `every`, failed ones included: a
///   throttled API is not asked again four times a second.
/// - Every fresh read the router makes for other callers (preflight, a write's read-back, the
///   checks before resuming) is held too (`remember`), and a background read that started
///   before it is dropped when it ends: an older read never replaces a newer one.
/// - When the background reads fail (throttled, AWS unreachable, anything), the held reading is
///   served while it is younger than `staleLimit` (six `every`: 30 s for Route53 by default),
///   and the failure is logged once. Past that the last failure is thrown (or, while a read is
///   still in flight, that none answered), and the sampler goes on without live weights
///   (`LoadBalancerSampler.WeightsUnread`: the counters still reach the hard signal).
final class PacedReads<Value: Sendable>: Sendable {
    let every: Duration
    let staleLimit: Duration

    private struct State {
        var held: (value: Value, readAt: Date, at: ContinuousClock.Instant)?
        /// Bumped by every `remember`: a background read that began before it is dropped.
        var generation = 0
        var inFlight = false
        var lastAttempt: ContinuousClock.Instant?
        /// The last background read's error, until one succeeds.
        var failure: (any Error)?
    }
    private let state = Locked(State())

    init(every: Duration, staleLimit: Duration? = nil) {
        self.every = every
        self.staleLimit = staleLimit ?? every * 6
    }

    /// No reading held is younger than `staleLimit` while a read is still in flight.
    struct NoAnswer: Error, CustomStringConvertible {
        let age: Duration
        var description: String {
            "no reading of the weights for \(formatDuration(age)): a read is still waiting for an answer"
        }
    }

    /// The held value and when it was read; `read` (one attempt, no retries) in the background
    /// when it is due. With nothing held yet, `read` is awaited.
    func value(read: @escaping @Sendable () async throws -> Value,
               log: @escaping @Sendable (String) -> Void) async throws -> (value: Value, readAt: Date) {
        let now = ContinuousClock.now
        let (held, start, generation, failure) = state.withLock { s in
            var start = false
            if let held = s.held, now - held.at >= every, !s.inFlight, s.lastAttempt.map({ now - $0 >= every }) ?? true {
                s.inFlight = true
                s.lastAttempt = now
                start = true
            }
            return (s.held, start, s.generation, s.failure)
        }
        guard let held else {
            let value = try await read()
            remember(value)
            return (value, Date())
        }
        if start {
            Task {
                do {
                    let value = try await read()
                    let recovered = state.withLock { s in
                        s.inFlight = false
                        if s.generation == generation {
                            s.held = (value, Date(), ContinuousClock.now)
                        }
                        let was = s.failure != nil
                        s.failure = nil
                        return was
                    }
                    if recovered { log("reads answer again") }
                } catch {
                    let first = state.withLock { s in
                        s.inFlight = false
                        let first = s.failure == nil
                        s.failure = error
                        return first
                    }
                    if first {
                        log("\(error); serving the reading of \(UTCTimestamp.string(held.readAt)) meanwhile (at most \(formatDuration(staleLimit)) old)")
                    }
                }
            }
        }
        let age = now - held.at
        if age >= staleLimit {
            throw failure ?? NoAnswer(age: age)
        }
        return (held.value, held.readAt)
    }

    /// `value` as read just now by the router itself (a fresh read, a write's read-back).
    func remember(_ value: Value) {
        state.withLock { s in
            s.held = (value, Date(), ContinuousClock.now)
            s.generation += 1
        }
    }
}

/// How long one background read may take: `readEvery`, between 2 s and 10 s. A read that hangs
/// (packets dropped, not refused) frees the next attempt that soon, not after the HTTP client's
/// 30 s.
func samplingReadTimeout(_ readEvery: Duration) -> Duration {
    min(max(readEvery, .seconds(2)), .seconds(10))
}
