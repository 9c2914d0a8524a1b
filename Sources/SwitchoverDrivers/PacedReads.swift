import Foundation
import SwitchoverCore

/// The sampling loop's reads of a router whose API has an account-wide rate limit (Route53
/// allows five requests a second per AWS account, shared with external-dns and every other
/// tool; the ELB API throttles Describe calls per account and region), while the loop asks for
/// the live weights every 250 ms.
///
/// - The loop is answered from the reading held (`value`), never kept waiting on the API once
///   there is one: when the reading is `every` old, one read goes out in the background, and
///   the loop gets the held reading meanwhile (with the time its read was sent). At most one
///   read is in flight, and reads start at most once per `every`, failed ones included: a
///   throttled API is not asked again four times a second. Each read gives up after
///   `readTimeout` (`samplingReadTimeout`).
/// - With nothing held yet (a resume while AWS fails), the read is awaited, under the same
///   pacing: between attempts the last failure is thrown without asking again.
/// - Every fresh read the router makes for other callers (preflight, a write's read-back, the
///   checks before resuming) is held too (`remember`), and a read that started before it is
///   dropped when it ends: an older read never replaces a newer one.
/// - When reads fail (throttled, AWS unreachable, anything), the held reading is served while
///   it is younger than `staleLimit` (six `every`, and never less than `maxAge` + `every`: 30 s
///   for Route53 by default), and the failure is logged once. Past that the last failure is
///   thrown (or, while a read is still in flight, that none answered), and the sampler goes on
///   without live weights (`LoadBalancerSampler.WeightsUnread`: the counters still reach the
///   hard signal).
final class PacedReads<Value: Sendable>: Sendable {
    let every: Duration
    /// How long one read may take before it gives up.
    let readTimeout: Duration
    let staleLimit: Duration

    private struct State {
        var held: (value: Value, readAt: Date, at: ContinuousClock.Instant)?
        /// Bumped by every `remember`: a read that began before it is dropped when it ends.
        var generation = 0
        var inFlight = false
        var lastAttempt: ContinuousClock.Instant?
        /// The last paced read's error, until a read succeeds or a value is remembered.
        var failure: (any Error)?
    }
    private let state = Locked(State())

    init(every: Duration) {
        self.every = every
        readTimeout = samplingReadTimeout(every)
        staleLimit = max(every * 6, every + samplingReadTimeout(every) + every)
    }

    /// How old a held reading gets in normal operation: it is refreshed once `every` old (at
    /// the next sample), and the refresh may take up to `readTimeout`.
    var maxAge: Duration { every + readTimeout }

    /// No reading held is younger than `staleLimit` while a read is still in flight.
    struct NoAnswer: Error, CustomStringConvertible {
        let age: Duration?
        var description: String {
            "no reading of the weights" + (age.map { " for \(formatDuration($0))" } ?? " yet") + ": a read is still waiting for an answer"
        }
    }

    /// The held value and when its read was sent; `read` (one attempt, no retries) in the
    /// background when it is due. With nothing held yet, `read` is awaited (paced the same way).
    func value(read: @escaping @Sendable () async throws -> Value,
               log: @escaping @Sendable (String) -> Void) async throws -> (value: Value, readAt: Date) {
        let now = ContinuousClock.now
        let (held, start, generation, failure) = state.withLock { s in
            let due = s.held.map { now - $0.at >= every } ?? true
            var start = false
            if due, !s.inFlight, s.lastAttempt.map({ now - $0 >= every }) ?? true {
                s.inFlight = true
                s.lastAttempt = now
                start = true
            }
            return (s.held, start, s.generation, s.failure)
        }
        guard let held else {
            guard start else { throw failure ?? NoAnswer(age: nil) }
            try await attempt(read, generation: generation, log: log, heldReadAt: nil)
            guard let fresh = state.withLock({ $0.held }) else { throw state.withLock { $0.failure } ?? NoAnswer(age: nil) }
            return (fresh.value, fresh.readAt)
        }
        if start {
            Task { try? await attempt(read, generation: generation, log: log, heldReadAt: held.readAt) }
        }
        let age = now - held.at
        if age >= staleLimit {
            throw failure ?? NoAnswer(age: age)
        }
        return (held.value, held.readAt)
    }

    /// One read: held unless a newer value was remembered since it began; a failure is kept
    /// (and logged once) and rethrown.
    private func attempt(_ read: @Sendable () async throws -> Value, generation: Int,
                         log: @Sendable (String) -> Void, heldReadAt: Date?) async throws {
        let sent = Date(), sentAt = ContinuousClock.now
        do {
            let value = try await read()
            let recovered = state.withLock { s in
                s.inFlight = false
                if s.generation == generation {
                    s.held = (value, sent, sentAt)
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
                log("\(error); " + (heldReadAt.map { "serving the reading sent at \(UTCTimestamp.string($0)) meanwhile (for at most \(formatDuration(staleLimit)))" }
                                    ?? "no reading yet"))
            }
            throw error
        }
    }

    /// `value` as read just now by the router itself (a fresh read, a write's read-back),
    /// `sent` when its read was sent.
    func remember(_ value: Value, sent: Date = Date()) {
        let age = Duration.milliseconds(Int64(max(0, Date().timeIntervalSince(sent)) * 1000))
        state.withLock { s in
            s.held = (value, sent, ContinuousClock.now - age)
            s.generation += 1
            s.failure = nil
        }
    }
}

/// How long one background read may take: `readEvery`, between 2 s and 10 s. A read that hangs
/// (packets dropped, not refused) frees the next attempt that soon, not after the HTTP client's
/// 30 s.
func samplingReadTimeout(_ readEvery: Duration) -> Duration {
    min(max(readEvery, .seconds(2)), .seconds(10))
}
