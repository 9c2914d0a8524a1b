import Foundation

/// What a policy says, field by field, in a canonical text: recorded in the journal when a run
/// begins, so that a run resumed under an edited policy is noticed and the change named (steps
/// `[1, 5, 50, 100]` → `[10, 100]` once turned a resume at 50% into "step 3 of 2", and
/// `[1, 2, 3, 100]` into a step back to 3%).
///
/// Comments and formatting do not count; values do. A Prometheus gate's URL is kept as its
/// scheme, host, port and path plus a hash of the whole, so a token in its query string never
/// reaches the journal while a change to it is still seen.
public struct PolicyFingerprint: Sendable, Hashable, Codable {
    public var name: String
    /// Top-level field → canonical text (`steps` → `[10, 25, 50, 100]`).
    public var fields: [String: String]
    /// FNV-1a (64 bit, hex) of the sorted fields: equal policies, equal hashes. Not a security
    /// hash: it tells an edit from none.
    public var hash: String

    public init(_ policy: Policy) {
        var fields: [String: String] = [:]
        // `haproxy socket=... backend=...`: the driver's own canonical text of its section.
        fields["loadBalancer"] = "\(policy.loadBalancer.driverName) \(policy.loadBalancer.settings.fingerprint)"
        fields["steps"] = "[" + policy.steps.map { formatNumber($0) }.joined(separator: ", ") + "]"
        fields["bake"] = formatDuration(policy.bake)
        fields["interval"] = formatDuration(policy.interval)
        fields["sampling"] = formatDuration(policy.sampling)
        fields["failureThreshold"] = "\(policy.failureThreshold)"
        fields["pauseAfterErrors"] = "\(policy.pauseAfterErrors)"
        fields["gates"] = "[" + policy.gates.map(Self.text).joined(separator: "; ") + "]"
        let hard = policy.rollback.hardSignal.map { "max5xxRatio=\(formatNumber($0.max5xxRatio)) minRequests=\($0.minRequests)" }
        fields["rollback"] = "automatic=\(policy.rollback.automatic) hardSignal=\(hard ?? "none")"
        let drain = policy.drain
        fields["drain"] = "maxActiveSessions=\(drain.maxActiveSessions) holdFor=\(formatDuration(drain.holdFor)) "
            + "dnsTTL=\(formatDuration(drain.dnsTTL)) timeout=\(formatDuration(drain.timeout)) "
            + "forceAfter=\(drain.forceAfter.map(formatDuration) ?? "none")"
        // Whether the file has a `drain` section: it decides `run`'s default goal (drained or
        // promoted), so adding or removing one is an edit even when its values are the defaults.
        fields["drainDeclared"] = "\(policy.drainDeclared)"
        fields["decommission"] = "requireApproval=\(policy.decommission.requireApproval)"
        fields["trust"] = "horizon=\(formatDuration(policy.trustHorizon))"
        // Always present, `[]` when empty, so that adding the first hook to a policy is an edit. A
        // run journaled before hooks existed has neither field: not a change (see `changes`).
        // URLs as scheme, host, port and first path segment plus a hash: a receiver's path may be
        // its secret (Slack's are).
        let hooks = policy.webhooks.filter { $0.type != .rollout }
        fields["webhooks"] = "[" + hooks.map {
            "\($0.name): \($0.type.rawValue) url=\(Self.shownReceiver($0.url)) timeout=\(formatDuration($0.timeout))"
                + (($0.secretFile).map { " secretFile=\($0)" } ?? "")
        }.joined(separator: "; ") + "]"
        fields["notifications"] = "[" + policy.notifications.map {
            "\($0.name): \($0.format.rawValue) url=\(Self.shownReceiver($0.url)) events=\($0.events.joined(separator: ",")) "
                + "timeout=\(formatDuration($0.timeout))" + (($0.secretFile).map { " secretFile=\($0)" } ?? "")
        }.joined(separator: "; ") + "]"
        // Where the gates' and the drain's counters come from: a query edited between a run's
        // start and its resume changes what "5xx ratio" means. The URL as a gate's is shown.
        fields["traffic"] = policy.traffic.map { traffic in
            let p = traffic.prometheus
            return "prometheus url=\(Self.shown(p.url)) requests=\(p.requests) errors=\(p.errors) "
                + "activeSessions=\(p.activeSessions ?? "none")"
        } ?? "load balancer"
        self.name = policy.name
        self.fields = fields
        self.hash = Self.fnv1a(fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\n"))
    }

    /// What differs from `other` (the policy now), one sentence per field: `steps [..] → [..]`.
    /// A field this (recorded) fingerprint does not have was added to fingerprints after it was
    /// journaled: not an edit of the policy, so not a change.
    public func changes(to other: PolicyFingerprint) -> [String] {
        Set(fields.keys).union(other.fields.keys).sorted().compactMap { key in
            guard let before = fields[key] else { return nil }
            let after = other.fields[key] ?? "(not set)"
            return before == after ? nil : "\(key) \(before) → \(after)"
        }
    }

    static func text(_ gate: Gate) -> String {
        switch gate.source {
        case .loadBalancer(let spec):
            return "\(gate.name): loadBalancer cluster=\(spec.cluster) max5xxRatio=\(spec.max5xxRatio.map { formatNumber($0) } ?? "none") "
                + "minRequests=\(spec.minRequests) maxMeanResponseTime=\(spec.maxMeanResponseTime.map(formatDuration) ?? "none")"
        case .prometheus(let spec):
            return "\(gate.name): prometheus url=\(shown(spec.url)) "
                + "query=\(spec.query) min=\(spec.min.map { formatNumber($0) } ?? "none") max=\(spec.max.map { formatNumber($0) } ?? "none")"
        case .webhook(let hook):
            return "\(gate.name): webhook rollout url=\(shownReceiver(hook.url)) timeout=\(formatDuration(hook.timeout))"
        }
    }

    /// A webhook's or receiver's URL: scheme, host, port and the first path segment, then a hash
    /// of the whole URL. Its path may be its secret (Slack's incoming webhooks), so only the hash
    /// says that it changed.
    static func shownReceiver(_ url: URL) -> String {
        var shown = "\(url.scheme ?? "http")://\(url.host ?? "?")" + (url.port.map { ":\($0)" } ?? "")
        let segments = url.path.split(separator: "/")
        if let first = segments.first { shown += "/\(first)" + (segments.count > 1 ? "/…" : "") }
        return "\(shown)#\(fnv1a(url.absoluteString).prefix(8))"
    }

    /// Scheme, host, port and path, then a hash of the whole URL: a token in it never reaches
    /// the journal, a change to it is still seen.
    static func shown(_ url: URL) -> String {
        var shown = URLComponents(url: url, resolvingAgainstBaseURL: false) ?? URLComponents()
        shown.user = nil
        shown.password = nil
        shown.query = nil
        shown.fragment = nil
        return "\(shown.string ?? "?")#\(fnv1a(url.absoluteString).prefix(8))"
    }

    static func fnv1a(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }
}

extension CutoverState {
    /// This state carried over to `policy` (a person chose to go on under an edited policy):
    /// the run never steps back. A shifting or paused run goes on at the first of the new steps at
    /// or above the share it was asked for last (the step's weights are written again on resume,
    /// and its bake restarts); a promoted or draining one stands at the new last step. Throws
    /// `PolicyAdoptionError` when a weight change is unfinished: it must finish under the policy it
    /// began with first.
    public func adopting(_ policy: Policy) throws -> CutoverState {
        if let pending = pendingWeights {
            throw PolicyAdoptionError(message: "a weight change is unfinished (intent \(pending.intent), "
                                      + "\(formatNumber(pending.percentToTarget))%); resume it under the policy it began with first")
        }
        var state = self
        // Hooks are the new policy's: a wait for hooks it may no longer have is asked afresh
        // (before the first step on resume, before the next one once the step's bake is done).
        state.hookWait = nil
        state.rollbackPoll = nil
        switch phase {
        case .shifting where step == 0 && appliedPercent == nil, .paused where step == 0 && appliedPercent == nil:
            // Waiting for hooks before the first step: no weight was ever written, and none may be
            // before the new policy's own confirm and pre-rollout hooks have answered.
            state.gates = [:]
            state.heldReported = []
        case .shifting, .paused:
            // Steps across waves: the schedule's one number per step grows with every step.
            let schedule = StepSchedule(policy: policy)
            let current = appliedPercent ?? percentToTarget
            state.step = (1...schedule.count).first { schedule.percent(atStep: $0) >= current - 1e-9 } ?? schedule.count
            state.appliedStep = nil
            state.stepStartedAt = nil
            state.gates = [:]
            state.heldReported = []
            if state.manuallyPromoted { state.step = schedule.count }
        case .promoted, .draining, .drained:
            state.step = StepSchedule(policy: policy).count
        default:
            break
        }
        return state
    }
}

/// Why a run cannot go on under an edited policy.
public struct PolicyAdoptionError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
