import Foundation
import Logging
import Synchronization
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverStore
#if canImport(Glibc)
import Glibc
#endif

/// Performs the engine's effectful actions write-ahead: the intent is journaled first (with the
/// state that expects its result, fenced by the lease's token, in one atomic write), then the
/// load balancer is asked and read back, then the result is journaled. A crash between intent
/// and result leaves an unfinished intent that resume re-applies exactly once (weights are
/// idempotent), finishing that same journal intent; a newer intent supersedes older unfinished
/// ones, which are closed as never applied.
///
/// Fencing: with a token, a coordinator whose lease was taken over gets `StoreError.fenced`
/// from the intent's write and never reaches the load balancer.
///
/// Every guard is here, next to the action it guards: FROM is put in drain only when its live
/// weight, read right before, is 0 and TO's is not (a restarted load balancer gives FROM its
/// weight back).
public final class WriteAheadInterpreter: Sendable {
    /// What a non-weight action came to.
    public enum Outcome: Sendable, Equatable {
        case done
        /// The router has no such notion (its capabilities say so: Envoy has no drain state);
        /// nothing was asked or journaled; fine, and why.
        case unsupported(String)
        /// Not asked: a guard refused, with why.
        case refused(String)
        /// Asked, and it failed.
        case failed(String)
    }

    let journal: any JournalStore
    let router: any WeightRouter
    let runID: Int64
    let fence: Int64?
    let crashAfterIntent: Int?
    /// Asked right before every call to the load balancer (the lease's `renew`): throws when this
    /// process may no longer lead. Nil in tests without a lease.
    let leaseCheck: (@Sendable () throws -> Void)?
    let logger: Logger
    let clock: @Sendable () -> Instant

    private struct Memory {
        /// Engine intent number → journal intent id, for intents journaled before a crash.
        var unfinished: [Int: Int64]
        /// Journal ids of non-weight intents (drain, ready, close sessions) journaled before a
        /// crash: see `closeInterrupted`.
        var interrupted: [Int64] = []
        var intentsBegun = 0
        var touched = false
    }
    private let memory: Mutex<Memory>

    /// - Parameters:
    ///   - unfinishedIntents: the journal's unfinished intents of this run (on resume).
    ///   - fence: the lease's token every intent is written with; nil only in tests.
    ///   - crashAfterIntent: TEST ONLY: `_exit(137)` right after journaling the N-th weight
    ///     intent, before performing it (`SWITCHOVER_TEST_CRASH_AFTER_INTENT`).
    public init(journal: any JournalStore, router: any WeightRouter, runID: Int64, fence: Int64?,
                unfinishedIntents: [JournalEvent], crashAfterIntent: Int? = nil, leaseCheck: (@Sendable () throws -> Void)? = nil,
                logger: Logger, clock: @escaping @Sendable () -> Instant) {
        self.journal = journal
        self.router = router
        self.runID = runID
        self.fence = fence
        self.crashAfterIntent = crashAfterIntent
        self.leaseCheck = leaseCheck
        self.logger = logger
        self.clock = clock
        let (map, interrupted) = Self.weightIntents(unfinishedIntents, journal: journal)
        memory = Mutex(Memory(unfinished: map, interrupted: interrupted))
    }

    /// The unfinished weight intents by engine intent number, and the other unfinished ones.
    static func weightIntents(_ unfinished: [JournalEvent], journal: any JournalStore) -> (map: [Int: Int64], interrupted: [Int64]) {
        var map: [Int: Int64] = [:]
        var interrupted: [Int64] = []
        for intent in unfinished {
            if case .setWeights(let number, _, _, _)? = try? journal.action(ofIntent: intent) {
                map[number] = intent.intentID ?? intent.sequence
            } else {
                interrupted.append(intent.intentID ?? intent.sequence)
            }
        }
        return (map, interrupted)
    }

    /// Starts over from the journal's unfinished intents, as a resumed coordinator would: after
    /// an outage of the journal, what this process remembers of its intents may be ahead of
    /// what was written.
    public func reload(unfinishedIntents: [JournalEvent]) {
        let (map, interrupted) = Self.weightIntents(unfinishedIntents, journal: journal)
        memory.withLock {
            $0.unfinished = map
            $0.interrupted = interrupted
        }
    }

    /// Closes the non-weight intents a crash interrupted (a drain, a ready, closing sessions):
    /// whether they reached the load balancer is unknown, and they are not re-applied as such.
    /// The resumed run reads the load balancer and asks again when still needed (`recover`
    /// re-drains FROM, a rollback makes it ready), each as an intent of its own.
    public func closeInterrupted() throws {
        let ids = memory.withLock { memory -> [Int64] in
            defer { memory.interrupted = [] }
            return memory.interrupted
        }
        for id in ids {
            try journal.finishIntent(id, at: clock(), ok: false, detail: Self.encode([
                "interrupted": "the coordinator stopped before its result; not known whether it was applied; "
                    + "the resumed run asks again when still needed",
            ]))
        }
    }

    /// True once this process asked the load balancer to change anything: until then a failure
    /// has changed nothing there.
    public var touchedLoadBalancer: Bool { memory.withLock { $0.touched } }

    /// Intent → apply and read back → result, for the engine's `setWeights`. `expecting` is the
    /// state that awaits the read-back, journaled with the intent. Throws only the journal's
    /// errors (`StoreError.fenced` among them); the load balancer's failures are a `.mismatch`.
    public func setWeights(intent: Int, percent: Double, step: Int, purpose: WeightsPurpose,
                           expecting state: CutoverState) async throws -> WeightsReadBack {
        let now = clock()
        let journalIntent: Int64
        if let existing = memory.withLock({ $0.unfinished[intent] }) {
            // Re-applying is an action like any other: fenced, so a coordinator whose lease was
            // taken over never re-applies anything.
            journalIntent = existing
            try journal.append(JournalEvent(run: runID, at: now, kind: "intentReapplied", detail: Self.encode([
                "message": "re-applying unfinished intent \(intent) (journal \(existing)): \(format(percent))% to \(router.toCluster.cluster)",
            ])), fence: fence)
            memory.withLock { _ = $0.unfinished.removeValue(forKey: intent) }
        } else {
            let action = Action.setWeights(intent: intent, percentToTarget: percent, step: step, purpose: purpose)
            journalIntent = try journal.beginIntent(run: runID, at: now, action, state: state, fence: fence)
            let begun = memory.withLock { memory -> Int in
                memory.intentsBegun += 1
                return memory.intentsBegun
            }
            if let crashAfterIntent, begun == crashAfterIntent {
                logger.warning("SWITCHOVER_TEST_CRASH_AFTER_INTENT: exiting right after journaling intent \(intent)")
                _exit(137)
            }
        }
        // Unfinished intents this newer one replaces (a rollback decided before they were
        // re-applied) are closed as superseded: never applied.
        let superseded = memory.withLock { memory -> [Int64] in
            let older = memory.unfinished.filter { $0.key < intent }.sorted { $0.key < $1.key }
            for (number, _) in older { memory.unfinished[number] = nil }
            return older.map(\.value)
        }
        for id in superseded {
            try journal.finishIntent(id, at: now, ok: false,
                                     detail: Self.encode(["superseded": "by intent \(intent) (\(purpose.rawValue)); never re-applied"]))
        }
        // Right before the load balancer is asked: the intent's fenced write succeeded, but this
        // process may have been frozen or cut off since; one that is no longer sure it leads asks
        // nothing (the intent stays open, for whoever leads to finish).
        try leaseCheck?()
        memory.withLock { $0.touched = true }
        let result: WeightsReadBack
        var ok = false
        let detail: String
        do {
            let live = try await router.apply(percentToTarget: percent, step: step)
            let wanted = router.plannedPercent(percentToTarget: percent, step: step)
            let effective = live.effectivePercentToTarget
            let drainedTo = percent > 0 ? live.inDrain(of: router.toCluster.servers) : []
            if !drainedTo.isEmpty {
                // The weights read back, but TO's servers in drain take none of that share.
                result = .mismatch(detail: "\(router.toCluster.cluster)'s server(s) \(drainedTo.joined(separator: ", ")) in drain state: "
                                   + "the \(format(effective))% read back goes to no server")
            } else if abs(effective - wanted) < 1e-6 {
                result = .verified(percentToTarget: effective)
                ok = true
            } else {
                result = .mismatch(detail: "asked for \(format(wanted))%, read back \(format(effective))%")
            }
            detail = Self.encode(WeightsResultDetail(percentToTarget: effective,
                                                     servers: Dictionary(live.assignment.all.map { ($0.server, $0.weight) },
                                                                         uniquingKeysWith: { a, _ in a }),
                                                     error: nil, generation: live.identity.generation))
        } catch {
            result = .mismatch(detail: "\(error)")
            detail = Self.encode(WeightsResultDetail(percentToTarget: nil, servers: [:], error: "\(error)"))
        }
        try journal.finishIntent(journalIntent, at: clock(), ok: ok, detail: detail)
        return result
    }

    /// Puts `cluster` (FROM) in drain: refused unless its live weight, read right now on every
    /// instance, is 0 and TO's is not; journaled as a failed intent when refused, so the journal shows the guard.
    public func drain(_ cluster: String) async throws -> Outcome {
        guard router.capabilities.contains(.drain) else {
            return .unsupported("\(router.driver) has no drain state")
        }
        if let refusal = await drainRefusal(cluster) {
            let id = try journal.beginIntent(run: runID, at: clock(), action: "setDrain", detail: Self.encode(["cluster": cluster]),
                                             state: nil, fence: fence)
            try journal.finishIntent(id, at: clock(), ok: false, detail: Self.encode(["refused": refusal]))
            return .refused(refusal)
        }
        return try await simple("setDrain", cluster: cluster) { try await self.router.setDrain(cluster: cluster) }
    }

    /// Takes `cluster` out of drain.
    public func ready(_ cluster: String) async throws -> Outcome {
        guard router.capabilities.contains(.ready) else { return .unsupported("\(router.driver) has no ready state") }
        return try await simple("setReady", cluster: cluster) { try await self.router.setReady(cluster: cluster) }
    }

    /// Closes the sessions still open to `cluster` (`drain.forceAfter`).
    public func closeSessions(_ cluster: String) async throws -> Outcome {
        guard router.capabilities.contains(.shutdownSessions) else {
            return .unsupported("\(router.driver) cannot shut down open sessions on demand")
        }
        return try await simple("shutdownSessions", cluster: cluster) { try await self.router.shutdownSessions(cluster: cluster) }
    }

    /// Why `cluster` must not be put in drain now, from the live weights read just before, or nil.
    func drainRefusal(_ cluster: String) async -> String? {
        let live: LiveWeights
        do {
            live = try await router.currentWeights()
        } catch {
            return "could not read the live weights first: \(error)"
        }
        guard cluster == router.fromCluster.cluster else { return nil }
        // Several instances: the weights read are the first answering instance's per service,
        // so every instance must have answered and agree with it before any is drained.
        if !live.unreachable.isEmpty {
            return "not every load-balancer instance answered: \(live.unreachable.joined(separator: "; "))"
        }
        if !live.disagreements.isEmpty {
            return "the load-balancer instances disagree: \(live.disagreements.joined(separator: "; "))"
        }
        guard live.assignment.fromTotal == 0, live.assignment.toTotal > 0 else {
            let servers = live.assignment.all.map { "\($0.server)=\($0.weight)" }.joined(separator: " ")
            return "it still carries traffic: live weights \(servers) send \(format(100 - live.effectivePercentToTarget))% to \(cluster)"
        }
        let drainedTo = live.inDrain(of: router.toCluster.servers)
        if !drainedTo.isEmpty {
            // TO's weight is there, but servers in drain take none of it: draining FROM too would
            // leave its share to fewer servers, or to none.
            return "\(router.toCluster.cluster)'s server(s) \(drainedTo.joined(separator: ", ")) in drain state take no new traffic"
        }
        return nil
    }

    /// An intent with no read-back beyond the driver's own.
    func simple(_ action: String, cluster: String, _ body: @Sendable () async throws -> Void) async throws -> Outcome {
        let id = try journal.beginIntent(run: runID, at: clock(), action: action, detail: Self.encode(["cluster": cluster]),
                                         state: nil, fence: fence)
        try leaseCheck?()
        memory.withLock { $0.touched = true }
        do {
            try await body()
            try journal.finishIntent(id, at: clock(), ok: true, detail: "{}")
            return .done
        } catch let error as LoadBalancerError where error.code == .unsupported {
            try journal.finishIntent(id, at: clock(), ok: true, detail: Self.encode(["unsupported": error.message]))
            return .unsupported(error.message)
        } catch {
            try journal.finishIntent(id, at: clock(), ok: false, detail: "\(error)")
            return .failed("\(error)")
        }
    }

    static func encode<T: Encodable>(_ value: T) -> String {
        (try? JournalJSON.encode(value)) ?? "{}"
    }
}

/// The detail of a `setWeights` result row: what the load balancer read back.
public struct WeightsResultDetail: Sendable, Hashable, Codable {
    public var percentToTarget: Double?
    public var servers: [String: Int]
    public var error: String?
    /// What the load balancer says of the version read back, when it says something: a Route53
    /// change batch's id and when it was INSYNC, an Envoy route version.
    public var generation: String? = nil
}
