import ArgumentParser
import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverRuntime
import SwitchoverStore

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The run's phase, step, weights (journaled and live), gates and drain.",
        discussion: "Reads the journal at --state and the live load balancer; changes nothing. Exit 0.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await global.guardingJournal("status") { try await execute() }
    }

    func execute() async throws {
        guard let journal = try global.existingJournal(), let (run, state) = try global.latestRun(in: journal) else {
            switch global.output {
            case .text: print("no run journaled at \(global.state)")
            case .json:
                printJSON(["run": NSNull(), "phase": Phase.pending.rawValue, "step": 0, "weights": [String: Any](),
                           "liveWeights": [String: Any](), "message": "no run journaled at \(global.state)"])
            }
            return
        }
        let at = now()
        let (configuration, _) = global.loadConfiguration()
        let policy = configuration.policy(named: run.policy)
        var live: [String: Double]?
        var liveError: String?
        var liveServers: [String: Int] = [:]
        if let policy, let from = configuration.cluster(named: run.from), let to = configuration.cluster(named: run.to) {
            do {
                let router = try DriverRegistry.standard.make(policy: policy, from: from, to: to,
                                                              logger: Logger(label: "switchover.status")).router
                let weights = try await router.currentWeights()
                live = [run.from: 100 - weights.effectivePercentToTarget, run.to: weights.effectivePercentToTarget]
                if weights.assignment.fromTotal + weights.assignment.toTotal == 0 { live = [run.from: 0, run.to: 0] }
                liveServers = Dictionary(weights.assignment.all.map { ($0.server, $0.weight) }, uniquingKeysWith: { a, _ in a })
            } catch {
                liveError = "\(error)"
            }
        } else {
            liveError = "run \(run.id)'s clusters or policy are not in --clusters/--policies; live weights unknown"
        }
        let steps = policy?.steps.count
        var bakeRemaining: Double?
        if let policy, let started = state.stepStartedAt, state.phase == .shifting {
            bakeRemaining = max(0, ((started + policy.bake) - at).secondsValue)
        }
        let holder = CoordinatorLock.isHeld(statePath: global.state) ? CoordinatorLock.holder(statePath: global.state) : nil
        let lastEvaluations = (try? journal.gateEvaluations(run: run.id, limit: 50)) ?? []
        // The drain as of now, from the journaled state (saved every sampling period while a
        // coordinator tracks it): open sessions, hold, ETA, DNS TTL wait.
        let drain = policy.flatMap { DrainView(state: state, policy: $0, now: at) }

        switch global.output {
        case .json:
            var gates: [String: Any] = [:]
            for (name, progress) in state.gates {
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
                        "startedAt": iso(run.startedAt)] as [String: Any],
                "phase": state.phase.rawValue,
                "step": state.step,
                "weights": [run.from: jsonNumber(100 - state.percentToTarget), run.to: jsonNumber(state.percentToTarget)],
                "liveWeights": (live ?? [:]).mapValues(jsonNumber),
                "liveServerWeights": liveServers,
                "gates": gates,
                "heldBy": state.heldByInconclusiveGates,
                "reason": state.reason.map { $0 as Any } ?? NSNull(),
                "bakeRemainingSeconds": bakeRemaining.map { $0 as Any } ?? NSNull(),
                "coordinator": holder.map { ["running": true, "pid": $0.pid, "startedAt": $0.startedAt] as [String: Any] }
                    ?? ["running": false],
                "rollbackVerified": state.rollbackVerified,
            ]
            if let steps { object["steps"] = steps }
            object["drain"] = drain.map { $0.json as Any } ?? NSNull()
            if let decommissionedAt = state.decommissionedAt { object["decommissionedAt"] = iso(decommissionedAt) }
            if let liveError { object["liveError"] = liveError }
            if let pending = state.pendingWeights {
                object["pendingWeights"] = ["intent": pending.intent, "percentToTarget": jsonNumber(pending.percentToTarget),
                                            "step": pending.step, "purpose": pending.purpose.rawValue]
            }
            printJSON(object)
        case .text:
            var lines = ["run \(run.id): \(run.from) → \(run.to) under \(run.policy), started \(iso(run.startedAt))"]
            lines.append("phase \(state.phase.rawValue), step \(state.step)\(steps.map { " of \($0)" } ?? "")")
            lines.append("journaled weights: \(formatPlain(100 - state.percentToTarget))% \(run.from), \(formatPlain(state.percentToTarget))% \(run.to)")
            if let live {
                lines.append("live weights: " + [run.from, run.to].map { "\(formatPlain(((live[$0] ?? 0) * 100).rounded() / 100))% \($0)" }
                    .joined(separator: ", "))
            } else if let liveError {
                lines.append("live weights: unknown (\(liveError))")
            }
            if let bakeRemaining { lines.append("bake: \(formatPlain((bakeRemaining * 10).rounded() / 10))s left") }
            for (name, progress) in state.gates.sorted(by: { $0.key < $1.key }) {
                let last = progress.last.map { "\($0.verdict.rawValue): \($0.detail)" } ?? "not evaluated yet"
                lines.append("gate \(name): \(progress.passes) pass, \(progress.failures) fail; last \(last)")
            }
            if !state.heldByInconclusiveGates.isEmpty {
                lines.append("held by inconclusive gates \(state.heldByInconclusiveGates.joined(separator: ", "))")
            }
            if let drain {
                lines.append("drain of \(run.from): \(drain.status.rawValue); " + drain.summary)
                lines.append("drain: \(drain.reason)")
                if let last = drain.lastRequestSeenAt { lines.append("drain: last request seen \(iso(last))") }
            }
            if let decommissionedAt = state.decommissionedAt {
                lines.append("decommissioned at \(iso(decommissionedAt)): \(run.from) may be torn down; rollback refuses")
            }
            if let reason = state.reason { lines.append("reason: \(reason)") }
            if let holder {
                lines.append("coordinator: running, \(holder)")
            } else {
                lines.append("coordinator: not running")
            }
            if lastEvaluations.isEmpty == false, state.gates.isEmpty {
                let last = lastEvaluations.last!
                lines.append("last gate evaluation: \(last.gate) \(last.outcome.verdict.rawValue) at \(iso(last.at))")
            }
            print(lines.joined(separator: "\n"))
        }
    }
}

func iso(_ instant: Instant) -> String {
    ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: instant.seconds))
}
