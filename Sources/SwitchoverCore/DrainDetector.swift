import Foundation

/// Decides, from samples of FROM, whether FROM is drained: the policy's `drain` section made
/// into a pure function, so `run` (after promotion) and `switchover drain` share it.
///
/// Drained means all of, at once:
/// - FROM's live weight reads back as 0;
/// - at least the DNS TTL has passed since it did (clients may have cached FROM's address that
///   long): the longer of the policy's `dnsTTL` and the record TTL the load balancer reads back
///   with its weights (Route53), so a record's TTL raised outside the policy is still waited;
/// - FROM's active sessions have been ≤ `maxActiveSessions` and no new session or response
///   appeared, continuously for `holdFor` (the "hold"), counted from the end of that DNS wait at
///   the earliest. Any new session or response, and any counter that went down (the load
///   balancer restarted: what happened is unknown), restarts the hold from that sample.
///
/// Why the hold begins only after the TTL: until the TTL has run out, clients that resolved
/// FROM's address before its weight went 0 may still use it, and one that resolves rarely may
/// simply not have sent its next request yet. Quiet during the TTL says nothing about them;
/// quiet after it, when every cache that honours the TTL has let FROM's answer go, does.
///
/// Drained is not sticky: activity after it turns the status back to `draining`, so a
/// decommission is never granted on stale evidence. After `timeout` the status is `timedOut`
/// (reported once, with what is still open); tracking continues and may still end drained.
public struct DrainDetector: Sendable, Hashable {
    public var maxActiveSessions: Int
    public var holdFor: Duration
    public var dnsTTL: Duration
    public var timeout: Duration
    public var forceAfter: Duration?
    /// The ETA fits at most this many points of history.
    public var etaWindow: Int
    /// History points are kept at least this far apart, so a fast sampling rate does not shrink
    /// the time the window covers.
    public var etaSpacing: Duration
    /// Fewer points with open sessions than this gives `unknown`.
    public var etaMinimumPoints: Int
    /// How old the last sample may be for FROM to be (or stay) drained; nil: any age (a view of
    /// a journaled drain, which judges nothing). A load balancer that stopped answering leaves
    /// the last sample idle forever: without this, the hold would be met on no evidence at all.
    public var freshness: Duration?

    public init(spec: DrainSpec, freshness: Duration? = nil, etaWindow: Int = 120, etaSpacing: Duration = .seconds(1),
                etaMinimumPoints: Int = 6) {
        self.freshness = freshness
        maxActiveSessions = spec.maxActiveSessions
        holdFor = spec.holdFor
        dnsTTL = spec.dnsTTL
        timeout = spec.timeout
        forceAfter = spec.forceAfter
        self.etaWindow = etaWindow
        self.etaSpacing = etaSpacing
        self.etaMinimumPoints = etaMinimumPoints
    }

    public func start(at now: Instant) -> DrainState {
        DrainState(startedAt: now)
    }

    /// Takes one sample of FROM, then checks deadlines at the sample's time.
    public func observe(_ state: DrainState, _ sample: DrainSample) -> (DrainState, [DrainEvent]) {
        var state = state
        if sample.weight == 0 {
            if state.weightZeroSince == nil { state.weightZeroSince = sample.at }
        } else {
            state.weightZeroSince = nil
        }
        var activity = false
        if let previous = state.lastSample {
            // Any growth is new traffic; a decrease is a restarted load balancer, whose
            // interval nobody saw, so it counts as activity too.
            activity = sample.sessionsTotal != previous.sessionsTotal || sample.responses != previous.responses
        }
        let idleNow = sample.activeSessions <= maxActiveSessions
        if activity {
            state.lastActivityAt = sample.at
            state.idleSince = idleNow ? sample.at : nil
        } else if idleNow {
            if state.idleSince == nil { state.idleSince = sample.at }
        } else {
            state.idleSince = nil
        }
        // Points closer than `etaSpacing` to the previous one are left out of the history.
        if state.history.last.map({ sample.at - $0.at >= etaSpacing }) ?? true {
            state.history.append(DrainPoint(at: sample.at, activeSessions: sample.activeSessions))
            if state.history.count > etaWindow { state.history.removeFirst(state.history.count - etaWindow) }
        }
        if let ttl = sample.recordTTL { state.recordTTL = max(state.recordTTL ?? .zero, ttl) }
        state.lastSample = sample
        return check(state, now: sample.at)
    }

    /// Re-evaluates the status at `now` without a new sample: the hold and the DNS TTL may have
    /// been met, the timeout or `forceAfter` may have passed.
    public func check(_ state: DrainState, now: Instant) -> (DrainState, [DrainEvent]) {
        var state = state
        var events: [DrainEvent] = []
        let missing = whatIsMissing(state, now: now)
        if missing.isEmpty {
            if state.status != .drained {
                let reason = drainedReason(state, now: now)
                state.status = .drained
                state.reason = reason
                events.append(.becameDrained(reason: reason))
            }
        } else {
            let reason = missing.joined(separator: "; ")
            if state.status == .drained {
                events.append(.activityAfterDrained(reason: reason))
            }
            state.reason = reason
            state.status = now >= state.startedAt + timeout ? .timedOut : .draining
            if state.status == .timedOut && !state.timeoutReported {
                state.timeoutReported = true
                events.append(.timedOut(reason: "not drained after \(format(timeout)): \(reason)",
                                        activeSessions: state.lastSample?.activeSessions ?? 0,
                                        lastActivityAt: state.lastActivityAt, weight: state.lastSample?.weight))
            }
        }
        if let forceAfter, !state.forceCloseIssued, now >= state.startedAt + forceAfter,
           let active = state.lastSample?.activeSessions, active > maxActiveSessions {
            state.forceCloseIssued = true
            events.append(.forceClose(activeSessions: active))
        }
        return (state, events)
    }

    /// The DNS wait of this drain: the policy's `dnsTTL`, or the longest record TTL the load
    /// balancer read back since the drain began when that is longer.
    public func dnsTTL(of state: DrainState) -> Duration {
        max(dnsTTL, state.recordTTL ?? .zero)
    }

    /// Where the hold counts from: when FROM went idle, but never before the DNS wait ended
    /// (FROM's weight read 0 plus the TTL). Nil while FROM is not idle. While the weight is not
    /// 0 the DNS wait has not begun, so the hold counts from idleness alone (it cannot end the
    /// drain then: the weight is missing).
    public func holdStart(_ state: DrainState) -> Instant? {
        guard let idleSince = state.idleSince else { return nil }
        guard let zeroSince = state.weightZeroSince else { return idleSince }
        return max(idleSince, zeroSince + dnsTTL(of: state))
    }

    /// What keeps FROM from being drained at `now`, one sentence per condition; empty when drained.
    public func whatIsMissing(_ state: DrainState, now: Instant) -> [String] {
        guard let sample = state.lastSample else { return ["no sample of FROM yet"] }
        var missing: [String] = []
        if let freshness, now - sample.at > freshness {
            missing.append("no fresh reading of FROM: the last is \(format(now - sample.at)) old (at most \(format(freshness)))")
        }
        if let zeroSince = state.weightZeroSince {
            let ttlEnds = zeroSince + dnsTTL(of: state)
            if now < ttlEnds { missing.append("DNS TTL: \(format(ttlEnds - now)) left") }
        } else {
            missing.append("live weight is \(sample.weight), not 0")
        }
        if sample.activeSessions > maxActiveSessions {
            missing.append("\(sample.activeSessions) sessions open (at most \(maxActiveSessions) allowed)")
        }
        if let idleSince = state.idleSince, let holdStart = holdStart(state) {
            if now < holdStart {
                missing.append("idle for \(format(now - idleSince)), but the hold (\(format(holdFor))) begins only after the DNS TTL")
            } else if now < holdStart + holdFor {
                missing.append("idle for \(format(now - holdStart)) of \(format(holdFor))"
                               + (holdStart > idleSince ? " since the DNS TTL ended" : ""))
            }
        } else if sample.activeSessions <= maxActiveSessions {
            missing.append("new traffic at \(state.lastActivityAt.map { "\($0)" } ?? "the last sample")")
        }
        return missing
    }

    private func drainedReason(_ state: DrainState, now: Instant) -> String {
        let idle = state.idleSince.map { format(now - $0) } ?? "0s"
        let afterTTL = holdStart(state).flatMap { start in state.idleSince.map { start > $0 } } == true
        return "live weight 0, \(state.lastSample?.activeSessions ?? 0) sessions open (at most \(maxActiveSessions)), "
            + "no new session or request for \(idle) (hold \(format(holdFor))\(afterTTL ? ", after the DNS TTL" : "")), "
            + "DNS TTL \(format(dnsTTL(of: state))) passed"
            + (dnsTTL(of: state) > dnsTTL ? " (the record's, read from the load balancer; the policy's is \(format(dnsTTL)))" : "")
    }

    /// How much of `holdFor` FROM has been idle, at `now`.
    public func holdProgress(_ state: DrainState, now: Instant) -> HoldProgress {
        let held = holdStart(state).map { max(0, (now - $0).milliseconds) } ?? 0
        return HoldProgress(heldMilliseconds: min(held, holdFor.milliseconds), holdForMilliseconds: holdFor.milliseconds)
    }

    /// When FROM is expected to be drained.
    ///
    /// Method: open sessions of a draining server mostly decay exponentially (each long-lived
    /// connection ends at its own pace, independently), so the estimate fits
    /// `ln(active) = a + k·t` by weighted least squares over the history window (the last
    /// `etaWindow` points, at least `etaSpacing` apart, only points with at least one open
    /// session, since ln 0 is undefined). Each point is weighted by its count because the
    /// logarithm of a small count is noisy (its variance goes as 1/count). The fit's time to
    /// reach `maxActiveSessions + 0.5` (the count rounds down to the allowed maximum) is when the
    /// hold can start, but not before the DNS TTL has passed; the ETA is that plus `holdFor`.
    /// While FROM is already idle the ETA is simply the hold's end.
    ///
    /// `unknown` when: the live weight is not 0 (FROM still gets traffic by design); fewer than
    /// `etaMinimumPoints` points with open sessions; or the fit shows no decay (k ≥ 0), e.g.
    /// steady long polls, where any number would be a guess.
    public func eta(_ state: DrainState, now: Instant) -> DrainETA {
        if state.status == .drained { return .at(now) }
        guard let sample = state.lastSample else { return .unknown(why: "no sample of FROM yet") }
        guard let zeroSince = state.weightZeroSince else {
            return .unknown(why: "FROM's live weight is \(sample.weight), not 0")
        }
        let ttlEnds = zeroSince + dnsTTL(of: state)
        if let holdStart = holdStart(state) {
            return .at(max(holdStart + holdFor, now))
        }
        let points = state.history.filter { $0.activeSessions > 0 }
        guard points.count >= etaMinimumPoints else {
            return .unknown(why: "\(points.count) samples with open sessions, at least \(etaMinimumPoints) needed")
        }
        let origin = points[0].at
        var sw = 0.0, swt = 0.0, swy = 0.0, swtt = 0.0, swty = 0.0
        for point in points {
            let w = Double(point.activeSessions)
            let t = (point.at - origin).secondsValue
            let y = log(Double(point.activeSessions))
            sw += w; swt += w * t; swy += w * y; swtt += w * t * t; swty += w * t * y
        }
        let denominator = sw * swtt - swt * swt
        guard denominator > 0 else { return .unknown(why: "the samples span no time") }
        let k = (sw * swty - swt * swy) / denominator
        let a = (swy - k * swt) / sw
        guard k < -1e-9 else { return .unknown(why: "open sessions are not decreasing") }
        let target = Double(maxActiveSessions) + 0.5
        let secondsToTarget = (log(target) - a) / k
        guard secondsToTarget.isFinite, secondsToTarget < 1e9 else { return .unknown(why: "decay too slow to estimate") }
        let idleAt = max(origin + .milliseconds(Int64((secondsToTarget * 1000).rounded())), now)
        return .at(max(idleAt, ttlEnds) + holdFor)
    }
}

func format(_ duration: Duration) -> String {
    let ms = duration.milliseconds
    if ms % 1000 == 0 { return "\(ms / 1000)s" }
    return "\(Double(ms) / 1000)s"
}
