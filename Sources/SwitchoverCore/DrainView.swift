import Foundation

/// FROM's drain as a person reads it, computed from a (journaled) state at `now` with the
/// policy's drain detector: the progress line, `status` (text and JSON) and the journal's
/// `drainProgress` events all show the same numbers.
public struct DrainView: Sendable, Hashable {
    public var status: DrainStatus
    /// What keeps FROM from being drained, or why it is.
    public var reason: String
    /// From the latest sample of FROM (nil before the first).
    public var activeSessions: Int?
    public var liveWeight: Int?
    public var sampledAt: Instant?
    public var hold: HoldProgress
    public var eta: DrainETA
    /// Time left before the DNS TTL has passed since FROM's weight read back 0; nil when it has
    /// passed, zero TTL; `weightZeroSince` nil means the wait has not begun (weight not 0).
    public var dnsTTLRemaining: Duration?
    /// The policy's `dnsTTL`, or the record TTL the load balancer read back when longer.
    public var dnsTTL: Duration
    public var weightZeroSince: Instant?
    /// The last sample at which FROM got a new session or request (nil: none seen).
    public var lastRequestSeenAt: Instant?
    public var startedAt: Instant
    public var timeoutAt: Instant
    /// The instant the view was computed for.
    public var now: Instant

    /// Nil when the state has no drain under way (not promoted yet, or a run that never drained).
    public init?(state: CutoverState, policy: Policy, now: Instant) {
        guard let drain = state.drain else { return nil }
        let detector = DrainDetector(spec: policy.drain)
        status = drain.status
        reason = drain.reason
        activeSessions = drain.lastSample?.activeSessions
        liveWeight = drain.lastSample?.weight
        sampledAt = drain.lastSample?.at
        hold = detector.holdProgress(drain, now: now)
        eta = detector.eta(drain, now: now)
        dnsTTL = detector.dnsTTL(of: drain)
        weightZeroSince = drain.weightZeroSince
        if let zero = drain.weightZeroSince {
            let left = (zero + dnsTTL) - now
            dnsTTLRemaining = left > .zero ? left : nil
        } else {
            dnsTTLRemaining = dnsTTL > .zero ? dnsTTL : nil
        }
        lastRequestSeenAt = drain.lastActivityAt
        startedAt = drain.startedAt
        timeoutAt = drain.startedAt + policy.drain.timeout
        self.now = now
    }

    /// `in 12s (01:02:03Z)` or `unknown (why)`.
    public var etaText: String {
        switch eta {
        case .at(let instant):
            let left = max(Duration.zero, instant - now)
            return "in \(Self.seconds(left)) (\(instant.iso8601))"
        case .unknown(let why):
            return "unknown (\(why))"
        }
    }

    /// `1 session open · hold 0.4s of 1s · ETA unknown (...) · DNS TTL 3s left`
    public var summary: String {
        var parts: [String] = []
        if let activeSessions {
            parts.append("\(activeSessions) session\(activeSessions == 1 ? "" : "s") open")
        }
        parts.append("hold \(Self.seconds(.milliseconds(hold.heldMilliseconds))) of \(Self.seconds(.milliseconds(hold.holdForMilliseconds)))")
        parts.append("ETA \(etaText)")
        if let dnsTTLRemaining {
            parts.append(weightZeroSince == nil ? "DNS TTL \(Self.seconds(dnsTTL)) not started (weight not 0)"
                                                : "DNS TTL \(Self.seconds(dnsTTLRemaining)) left")
        }
        return parts.joined(separator: " · ")
    }

    /// The JSON `status` prints under `drain`.
    public var json: [String: Any] {
        var object: [String: Any] = [
            "status": status.rawValue,
            "reason": reason,
            "activeSessions": activeSessions.map { $0 as Any } ?? NSNull(),
            "liveWeight": liveWeight.map { $0 as Any } ?? NSNull(),
            "hold": ["heldSeconds": Double(hold.heldMilliseconds) / 1000,
                     "holdForSeconds": Double(hold.holdForMilliseconds) / 1000,
                     "fraction": hold.fraction],
            "dnsTTL": ["seconds": dnsTTL.totalSeconds,
                       "remainingSeconds": dnsTTLRemaining.map { $0.totalSeconds as Any } ?? 0,
                       "waitStarted": weightZeroSince != nil],
            "lastRequestSeenAt": lastRequestSeenAt.map { $0.iso8601 as Any } ?? NSNull(),
            "startedAt": startedAt.iso8601,
            "timeoutAt": timeoutAt.iso8601,
        ]
        switch eta {
        case .at(let instant):
            object["eta"] = instant.iso8601
            object["etaSeconds"] = max(0, (instant - now).totalSeconds)
        case .unknown(let why):
            object["eta"] = "unknown"
            object["etaReason"] = why
        }
        if let sampledAt { object["sampledAt"] = sampledAt.iso8601 }
        return object
    }

    static func seconds(_ duration: Duration) -> String {
        formatNumber(duration.totalSeconds, decimals: 1) + "s"
    }
}
