import Foundation
import SwitchoverAWS
import SwitchoverCore

/// The live-weight reads of a router whose API has an account-wide rate limit (Route53 allows
/// five requests a second per AWS account, shared with external-dns and every other tool; the
/// ELB API throttles Describe calls per account and region), paced for the sampling loop that
/// asks for them every 250 ms.
///
/// - At most one read per `every`: in between, the last reading is served again, with the
///   time it was really read (`LiveWeights.readAt`).
/// - A write's read-back is a reading too (`remember`), so the step's weights are seen at once.
/// - A read while a reading is held retries nothing: a throttling backoff would hold the whole
///   sample back, and with it the hard signal, which reads its counters elsewhere (Prometheus).
///   When such a read is throttled or the API is unreachable, the held reading is served while
///   it is younger than `staleLimit` (six `every`: 30 s for Route53 by default), and the failure
///   is logged once; past that the error is thrown, and the sample goes on without live weights
///   (`LoadBalancerSampler.WeightsUnread`: the counters still reach the hard signal).
/// - With nothing held (the first read) the read goes through the retrying client.
final class PacedReads<Value: Sendable>: Sendable {
    let every: Duration
    let staleLimit: Duration
    private let held = Locked<(value: Value, readAt: Date, at: ContinuousClock.Instant)?>(nil)
    private let failing = Locked(false)

    init(every: Duration, staleLimit: Duration? = nil) {
        self.every = every
        self.staleLimit = staleLimit ?? every * 6
    }

    /// The held value when it is younger than `every`, else a new one from `read`, which is told
    /// whether a held value stands behind it (`true`: read once, without retries).
    func value(onFailure log: (String) -> Void, _ read: (_ fallbackHeld: Bool) async throws -> Value) async throws -> (Value, readAt: Date) {
        let now = ContinuousClock.now
        let last = held.withLock { $0 }
        if let last, now - last.at < every { return (last.value, last.readAt) }
        do {
            let value = try await read(last != nil)
            remember(value)
            if failing.withLock({ let was = $0; $0 = false; return was }) { log("reads answer again") }
            return (value, held.withLock { $0?.readAt } ?? Date())
        } catch let error as AWSError where error.kind == .throttled || error.kind == .unavailable {
            guard let last, now - last.at < staleLimit else { throw error }
            if !failing.withLock({ let was = $0; $0 = true; return was }) {
                log("\(error); serving the reading of \(UTCTimestamp.string(last.readAt)) meanwhile (at most \(formatDuration(staleLimit)) old)")
            }
            return (last.value, last.readAt)
        }
    }

    /// `value` as read now (a write's read-back).
    func remember(_ value: Value) {
        held.withLock { $0 = (value, Date(), ContinuousClock.now) }
    }
}
