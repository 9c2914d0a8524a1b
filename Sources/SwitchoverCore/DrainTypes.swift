/// One look at FROM while it drains: its live weight, its open sessions, and cumulative counters
/// whose growth between two samples means new traffic arrived.
public struct DrainSample: Sendable, Hashable, Codable {
    public var at: Instant
    /// FROM's live weight summed over its servers, as read back from the load balancer.
    public var weight: Int
    public var activeSessions: Int
    public var sessionsTotal: Int64
    public var responses: Int64
    /// How long clients may keep using FROM after its weight reads 0, as the load balancer
    /// itself says (a Route53 record's TTL, read back with the weights); nil where it says
    /// nothing. The drain waits the longer of this and the policy's `dnsTTL`.
    public var recordTTL: Duration?

    public init(at: Instant, weight: Int, activeSessions: Int, sessionsTotal: Int64, responses: Int64,
                recordTTL: Duration? = nil) {
        self.recordTTL = recordTTL
        self.at = at
        self.weight = weight
        self.activeSessions = activeSessions
        self.sessionsTotal = sessionsTotal
        self.responses = responses
    }

    /// FROM's part of a load-balancer sample.
    public init(at: Instant, counters: ClusterCounters, recordTTL: Duration? = nil) {
        self.init(at: at, weight: counters.weight, activeSessions: counters.activeSessions,
                  sessionsTotal: counters.sessionsTotal, responses: counters.responses, recordTTL: recordTTL)
    }
}

/// The drain detector's verdict.
public enum DrainStatus: String, Sendable, Hashable, Codable {
    case draining, drained
    /// `timeout` passed before drained; tracking goes on, and it may still become drained.
    case timedOut
}

/// An estimate of when FROM will be drained.
public enum DrainETA: Sendable, Hashable, Codable {
    /// The instant the hold is expected to be met.
    case at(Instant)
    /// The data cannot support an estimate; `why` says what is missing.
    case unknown(why: String)
}

/// How far the idle hold has got: `held` of `holdFor`.
public struct HoldProgress: Sendable, Hashable, Codable {
    public var heldMilliseconds: Int64
    public var holdForMilliseconds: Int64
    /// 0–1.
    public var fraction: Double {
        holdForMilliseconds <= 0 ? 1 : min(1, Double(heldMilliseconds) / Double(holdForMilliseconds))
    }
}

/// Everything the drain detector remembers; `Codable` so it rides in the journaled state.
public struct DrainState: Sendable, Hashable, Codable {
    public var startedAt: Instant
    public var status: DrainStatus
    /// Why the status is what it is, in a sentence (what is still open, what is being waited for).
    public var reason: String
    /// Since when FROM's live weight has read back as 0; nil while it is not.
    public var weightZeroSince: Instant?
    /// Since when FROM has been idle (sessions ≤ max, nothing new); nil while it is not.
    public var idleSince: Instant?
    /// The last sample at which new sessions or responses were seen.
    public var lastActivityAt: Instant?
    public var lastSample: DrainSample?
    /// The longest record TTL the load balancer reported since the drain began (a lowered TTL
    /// does not shorten what resolvers already cached); nil when it reported none.
    public var recordTTL: Duration?
    /// Samples of active sessions kept for the ETA fit (downsampled, bounded).
    public var history: [DrainPoint]
    public var timeoutReported: Bool
    public var forceCloseIssued: Bool

    public init(startedAt: Instant) {
        self.startedAt = startedAt
        status = .draining
        reason = "no sample yet"
        weightZeroSince = nil
        idleSince = nil
        lastActivityAt = nil
        lastSample = nil
        history = []
        timeoutReported = false
        forceCloseIssued = false
    }
}

/// One (time, active sessions) point of the ETA's history.
public struct DrainPoint: Sendable, Hashable, Codable {
    public var at: Instant
    public var activeSessions: Int
    public init(at: Instant, activeSessions: Int) {
        self.at = at
        self.activeSessions = activeSessions
    }
}

/// What the drain detector asks for besides a new state.
public enum DrainEvent: Sendable, Hashable, Codable {
    case becameDrained(reason: String)
    /// New sessions or responses after drained, or the weight no longer 0: back to draining.
    case activityAfterDrained(reason: String)
    /// Reported once: what is still open at the deadline.
    case timedOut(reason: String, activeSessions: Int, lastActivityAt: Instant?, weight: Int?)
    /// `forceAfter` passed with sessions still open: shut them down (once).
    case forceClose(activeSessions: Int)
}
