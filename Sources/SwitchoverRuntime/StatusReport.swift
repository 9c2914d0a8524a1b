import Foundation
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverStore

/// What `switchover status` shows: the journal's latest run (phase, step, journaled weights,
/// gates, drain) with the load balancer's live weights read now, and whether a coordinator holds
/// the journal. Changes nothing. The drain is the same `DrainView` the progress line and the
/// journal's `drainProgress` events show.
public struct StatusReport: Sendable {
    public var state: StateLocation
    /// Nil when no run is journaled.
    public var run: RunRecord?
    public var cutover: CutoverState
    public var steps: Int?
    /// Percent by cluster, read from the load balancer now; nil when it could not be read.
    public var live: [String: Double]?
    public var liveServers: [String: Int] = [:]
    public var liveError: String?
    public var bakeRemaining: Double?
    public var coordinator: LockHolder?
    /// Whether the journal is in etcd (`leader` is then part of the JSON).
    public var isEtcd = false
    public var lastEvaluation: GateEvaluationRecord?
    public var drain: DrainView?
    /// When the lease was last taken and by whom, for people.
    public var now: Instant
    /// Several services: each one's journaled share and every instance's live weights.
    public var services: [ServiceStatus] = []
    /// Instances that did not answer the read, naming each.
    public var unreachable: [String] = []

    /// One service of several, in `status`.
    public struct ServiceStatus: Sendable {
        public var service: String
        /// TO's percentage the journal puts this service at.
        public var journaledPercent: Double
        /// Per instance, in order: weight summed per cluster and TO's share.
        public var instances: [(instance: String, weights: [String: Int], percentToTarget: Double)]
    }

    /// Reads the journal at the context's `--state` and the live load balancer.
    public static func read(context: RuntimeContext) async throws -> StatusReport {
        let now = Coordinator.wallClock()
        guard let journal = try context.state.existingJournal(), let (run, state) = try StateLocation.latestRun(in: journal) else {
            return StatusReport(state: context.state, run: nil, cutover: .initial, now: now)
        }
        var report = StatusReport(state: context.state, run: run, cutover: state, now: now)
        let policy = context.configuration.policy(named: run.policy)
        if let policy, let from = context.configuration.cluster(named: run.from), let to = context.configuration.cluster(named: run.to) {
            do {
                let weights = try await context.loadBalancer(policy: policy, from: from, to: to).router.currentWeights()
                let total = weights.assignment.fromTotal + weights.assignment.toTotal
                report.live = total == 0 ? [run.from: 0, run.to: 0]
                    : [run.from: 100 - weights.effectivePercentToTarget, run.to: weights.effectivePercentToTarget]
                report.liveServers = Dictionary(weights.assignment.all.map { ($0.server, $0.weight) }, uniquingKeysWith: { a, _ in a })
                report.unreachable = weights.unreachable
                report.services = Self.services(weights, policy: policy, state: state, run: run)
            } catch {
                report.liveError = "\(error)"
            }
        } else {
            report.liveError = "run \(run.id)'s clusters or policy are not in --clusters/--policies; live weights unknown"
        }
        report.steps = policy.map { StepSchedule(policy: $0).count }
        if let policy, let started = state.stepStartedAt, state.phase == .shifting {
            report.bakeRemaining = max(0, ((started + policy.bake) - now).secondsValue)
        }
        report.coordinator = context.state.coordinator
        report.isEtcd = context.state.isEtcd
        report.lastEvaluation = (try? journal.gateEvaluations(run: run.id, limit: 1))?.last
        // The drain as of now, from the journaled state (saved every sampling period while a
        // coordinator tracks it): open sessions, hold, ETA, DNS TTL wait.
        report.drain = policy.flatMap { DrainView(state: state, policy: $0, now: now) }
        return report
    }

    /// Each service's journaled percentage (from the step its verified weights belong to) and
    /// every instance's live weights for it.
    static func services(_ live: LiveWeights, policy: Policy, state: CutoverState, run: RunRecord) -> [ServiceStatus] {
        guard let members = live.members, let names = policy.loadBalancer.services else { return [] }
        let schedule = StepSchedule(policy: policy)
        let step = state.appliedStep ?? state.step
        let planned = schedule.percents(atStep: step)
        return names.map { service in
            let journaled: Double = switch state.phase {
            case .promoted, .draining, .drained, .decommissioned: 100
            case .rolledBack where state.rollbackVerified: 0
            default: state.appliedPercent == nil && state.appliedStep == nil ? 0 : planned[service] ?? 0
            }
            let instances = members.filter { $0.service == service }.map { member in
                (member.instance, [run.from: member.assignment.fromTotal, run.to: member.assignment.toTotal],
                 member.assignment.effectivePercentToTarget)
            }
            return ServiceStatus(service: service, journaledPercent: journaled, instances: instances)
        }
    }

    /// `status --output json` (DESIGN.md section 2: at least phase, step, weights, liveWeights).
    public var json: [String: Any] {
        guard let run else {
            return ["run": NSNull(), "phase": Phase.pending.rawValue, "step": 0, "weights": [String: Any](),
                    "liveWeights": [String: Any](), "message": "no run journaled at \(state)"]
        }
        let cutover = self.cutover
        var gates: [String: Any] = [:]
        for (name, progress) in cutover.gates {
            var entry: [String: Any] = ["passes": progress.passes, "failures": progress.failures,
                                        "consecutiveErrors": progress.consecutiveErrors]
            if let last = progress.last {
                entry["last"] = last.verdict.rawValue
                entry["detail"] = last.detail
                if let value = last.value, value.isFinite { entry["value"] = value }
            }
            gates[name] = entry
        }
        var object: [String: Any] = [
            "run": ["id": run.id, "from": run.from, "to": run.to, "policy": run.policy,
                    "startedAt": run.startedAt.iso8601] as [String: Any],
            "phase": cutover.phase.rawValue,
            "step": cutover.step,
            "weights": [run.from: JSONNumber.of(100 - cutover.percentToTarget), run.to: JSONNumber.of(cutover.percentToTarget)],
            "liveWeights": (live ?? [:]).mapValues(JSONNumber.of),
            "liveServerWeights": liveServers,
            "gates": gates,
            "heldBy": cutover.heldByInconclusiveGates,
            "reason": cutover.reason.map { $0 as Any } ?? NSNull(),
            "bakeRemainingSeconds": bakeRemaining.map { $0 as Any } ?? NSNull(),
            "coordinator": coordinator.map { ["running": true, "pid": $0.pid, "startedAt": $0.startedAt] as [String: Any] }
                ?? ["running": false],
            "rollbackVerified": cutover.rollbackVerified,
        ]
        if let steps { object["steps"] = steps }
        if isEtcd {
            // DESIGN.md section 2: who holds the etcd journal's leader lease, or null.
            object["leader"] = coordinator.map { holder -> [String: Any] in
                ["id": holder.id ?? "", "host": holder.host ?? "", "pid": holder.pid, "since": holder.startedAt,
                 "token": holder.token ?? 0]
            } ?? NSNull()
        }
        if !services.isEmpty {
            // DESIGN.md section 3: "services": {"<svc>": {"weights": {...}, "instances":
            // {"<lb>": {"liveWeights": {...}}}}}, percentages by cluster like the top level.
            object["services"] = Dictionary(uniqueKeysWithValues: services.map { service in
                (service.service, [
                    "weights": [run.from: JSONNumber.of(100 - service.journaledPercent), run.to: JSONNumber.of(service.journaledPercent)],
                    "instances": Dictionary(uniqueKeysWithValues: service.instances.map { instance in
                        (instance.instance, [
                            "liveWeights": [run.from: JSONNumber.of(100 - instance.percentToTarget), run.to: JSONNumber.of(instance.percentToTarget)],
                            "liveWeightTotals": instance.weights,
                        ] as [String: Any])
                    }),
                ] as [String: Any])
            })
        }
        if !unreachable.isEmpty { object["unreachable"] = unreachable }
        object["drain"] = drain.map { $0.json as Any } ?? NSNull()
        if let decommissionedAt = cutover.decommissionedAt { object["decommissionedAt"] = decommissionedAt.iso8601 }
        if let liveError { object["liveError"] = liveError }
        if let pending = cutover.pendingWeights {
            object["pendingWeights"] = ["intent": pending.intent, "percentToTarget": JSONNumber.of(pending.percentToTarget),
                                        "step": pending.step, "purpose": pending.purpose.rawValue]
        }
        if let drift = cutover.drift {
            object["drift"] = ["since": drift.since.iso8601, "restarted": drift.restarted, "differences": drift.differences]
        }
        if let wait = cutover.hookWait, !cutover.waitingForHooks.isEmpty {
            object["waitingFor"] = ["hooks": wait.waitingFor, "beforeStep": wait.step, "stage": wait.stage.rawValue,
                                    "since": wait.since.iso8601, "answers": wait.answers] as [String: Any]
        } else {
            object["waitingFor"] = NSNull()
        }
        return object
    }

    /// `status` for people, one fact a line.
    public var lines: [String] {
        guard let run else { return ["no run journaled at \(state)"] }
        let cutover = self.cutover
        var lines = ["run \(run.id): \(run.from) → \(run.to) under \(run.policy), started \(run.startedAt.iso8601)"]
        lines.append("phase \(cutover.phase.rawValue), step \(cutover.step)\(steps.map { " of \($0)" } ?? "")")
        lines.append("journaled weights: \(format(100 - cutover.percentToTarget))% \(run.from), \(format(cutover.percentToTarget))% \(run.to)")
        if let live {
            lines.append("live weights: " + [run.from, run.to].map { "\(format(((live[$0] ?? 0) * 100).rounded() / 100))% \($0)" }
                .joined(separator: ", "))
        } else if let liveError {
            lines.append("live weights: unknown (\(liveError))")
        }
        for service in services {
            lines.append("service \(service.service): journaled \(format(service.journaledPercent))% \(run.to); live "
                         + service.instances.map { "\($0.instance) \(format($0.percentToTarget))%" }.joined(separator: ", "))
        }
        for instance in unreachable { lines.append("not answering: \(instance)") }
        if let drift = cutover.drift {
            lines.append("live weights differ from the journal since \(drift.since.iso8601): " + drift.differences.joined(separator: "; "))
        }
        if let bakeRemaining { lines.append("bake: \(format((bakeRemaining * 10).rounded() / 10))s left") }
        for (name, progress) in cutover.gates.sorted(by: { $0.key < $1.key }) {
            let last = progress.last.map { "\($0.verdict.rawValue): \($0.detail)" } ?? "not evaluated yet"
            lines.append("gate \(name): \(progress.passes) pass, \(progress.failures) fail; last \(last)")
        }
        if !cutover.heldByInconclusiveGates.isEmpty {
            lines.append("held by inconclusive gates \(cutover.heldByInconclusiveGates.joined(separator: ", "))")
        }
        if let wait = cutover.hookWait, !cutover.waitingForHooks.isEmpty {
            let answers = wait.waitingFor.map { "\($0): \(wait.answers[$0] ?? "no answer yet")" }.joined(separator: "; ")
            lines.append("waiting for \(wait.waitingFor.joined(separator: ", ")) before step \(wait.step) since \(wait.since.iso8601) (\(answers)); "
                         + "`switchover promote` skips the wait, `rollback` and `abort` end it")
        }
        if let drain {
            lines.append("drain of \(run.from): \(drain.status.rawValue); " + drain.summary)
            lines.append("drain: \(drain.reason)")
            if let last = drain.lastRequestSeenAt { lines.append("drain: last request seen \(last.iso8601)") }
        }
        if let decommissionedAt = cutover.decommissionedAt {
            lines.append("decommissioned at \(decommissionedAt.iso8601): \(run.from) may be torn down; rollback refuses")
        }
        if let reason = cutover.reason { lines.append("reason: \(reason)") }
        lines.append(coordinator.map { "coordinator: running, \($0)" } ?? "coordinator: not running")
        if let lastEvaluation, cutover.gates.isEmpty {
            lines.append("last gate evaluation: \(lastEvaluation.gate) \(lastEvaluation.outcome.verdict.rawValue) at \(lastEvaluation.at.iso8601)")
        }
        return lines
    }
}
