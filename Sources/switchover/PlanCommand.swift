import ArgumentParser
import Foundation
import SwitchoverCore

/// `switchover plan FROM TO --policy NAME`: what the cutover will do, without doing it.
///
/// Refuses (exit 2) on any problem of the configuration, like every command that acts, so a
/// plan is only ever shown for a configuration `run` would accept.
struct Plan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the steps, the weights of every server at each step, and the expected duration.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The cluster traffic moves from.") var from: String
    @Argument(help: "The cluster traffic moves to.") var to: String
    @Option(help: "The policy's metadata.name.") var policy: String

    func run() async throws {
        let (_, fromCluster, toCluster, chosen) = try global.requirePair(from: from, to: to, policy: policy)
        let plan = CutoverPlan(from: fromCluster, to: toCluster, policy: chosen)
        switch global.output {
        case .json:
            var object = json(plan, bake: chosen.bake, maxWeight: chosen.loadBalancer.weightTranslation.maxWeight)
            object["webhooks"] = chosen.webhooks.map {
                ["name": $0.name, "type": $0.type.rawValue, "when": $0.type.when(lastStep: plan.steps.count)]
            }
            object["traffic"] = chosen.trafficSource
            object["notifications"] = chosen.notifications.map {
                ["name": $0.name, "format": $0.format.rawValue, "events": $0.events] as [String: Any]
            }
            printJSON(object)
        case .text: print(text(plan, policy: chosen) + hooks(chosen, lastStep: plan.steps.count), terminator: "")
        }
    }

    private func json(_ plan: CutoverPlan, bake: Duration, maxWeight: Int) -> [String: Any] {
        [
            "from": plan.from,
            "to": plan.to,
            "policy": plan.policy,
            "driver": plan.driver,
            "maxWeight": maxWeight,
            "bakeSeconds": JSONNumber.of(bake.totalSeconds),
            "expectedSeconds": JSONNumber.of(plan.expected.totalSeconds),
            "instances": plan.instances,
            "steps": plan.steps.map { step -> [String: Any] in
                var row: [String: Any] = [
                    "step": step.number,
                    "percent": JSONNumber.of(step.percent),
                    "weights": Dictionary(uniqueKeysWithValues: step.weights.all.map { ($0.server, $0.weight) }),
                    "effectivePercent": step.effectivePercent,
                    "cumulativeSeconds": JSONNumber.of(step.cumulative.totalSeconds),
                ]
                if !step.services.isEmpty {
                    row["services"] = Dictionary(uniqueKeysWithValues: step.services.map { service in
                        (service.service, [
                            "percent": JSONNumber.of(service.percent),
                            "effectivePercent": service.effectivePercent,
                            "weights": Dictionary(uniqueKeysWithValues: service.weights.all.map { ($0.server, $0.weight) }),
                            "instances": plan.instances,
                        ] as [String: Any])
                    })
                }
                if let wave = step.wave { row["wave"] = wave }
                return row
            },
        ]
    }

    /// Who is asked or told what, and when (nothing without hooks or notifications).
    private func hooks(_ policy: Policy, lastStep: Int) -> String {
        guard !policy.webhooks.isEmpty || !policy.notifications.isEmpty else { return "" }
        var out = "\n"
        for hook in policy.webhooks {
            out += "webhook \(hook.name) (\(hook.type.rawValue)): \(hook.type.when(lastStep: lastStep))\n"
        }
        for target in policy.notifications {
            out += "notification \(target.name) (\(target.format.rawValue)): \(target.events.joined(separator: ", "))"
                + (target.secretFile == nil ? "" : ", signed") + "\n"
        }
        if policy.webhooks.contains(where: \.type.isConfirmation) {
            out += "the expected duration does not count the time confirmation hooks keep a step waiting\n"
        }
        return out
    }

    /// An aligned table: one row per step, one column per load-balancer server.
    private func text(_ plan: CutoverPlan, policy: Policy) -> String {
        let maxWeight = policy.loadBalancer.weightTranslation.maxWeight
        var out = "\(plan.from) -> \(plan.to), policy \(plan.policy): driver \(plan.driver) (weights 0-\(maxWeight) per server), "
        out += "\(plan.steps.count) step\(plan.steps.count == 1 ? "" : "s"), bake \(formatDuration(policy.bake)) each\n"
        out += "traffic counted by \(policy.trafficSource)\n\n"
        if plan.instances.count > 1 {
            out += "every weight is written to each of \(plan.instances.count) instances and read back from each: \(plan.instances.joined(separator: ", "))\n\n"
        }
        func table(_ header: [String], _ rows: [[String]]) -> String {
            let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
            func line(_ cells: [String]) -> String {
                cells.enumerated().map { column, cell in
                    String(repeating: " ", count: widths[column] - cell.count) + cell
                }.joined(separator: "  ") + "\n"
            }
            return ([header] + rows).map(line).joined()
        }
        guard let first = plan.steps.first, !first.services.isEmpty else {
            let servers = plan.steps.first?.weights.all.map(\.server) ?? []
            out += table(["step", "to \(plan.to)"] + servers + ["effective", "elapsed"], plan.steps.map { step in
                ["\(step.number)", "\(formatNumber(step.percent))%"] + step.weights.all.map { "\($0.weight)" }
                    + [String(format: "%.3f%%", step.effectivePercent), formatDuration(step.cumulative)]
            })
            out += "\nexpected duration: \(formatDuration(plan.expected)) if every gate passes at the first bake\n"
            return out
        }
        // Several services: the steps (with their wave), then each service's weights per step,
        // as every instance gets them.
        out += table(["step", "wave", "elapsed"] + first.services.map(\.service), plan.steps.map { step in
            ["\(step.number)", step.wave ?? "all services at \(formatNumber(step.percent))%", formatDuration(step.cumulative)]
                + step.services.map { String(format: "%.3f%%", $0.effectivePercent) }
        })
        for (index, service) in first.services.enumerated() {
            out += "\nservice \(service.service) (on \(plan.instances.joined(separator: ", "))):\n"
            let servers = service.weights.all.map(\.server)
            out += table(["step", "to \(plan.to)"] + servers + ["effective"], plan.steps.map { step in
                let entry = step.services[index]
                return ["\(step.number)", "\(formatNumber(entry.percent))%"] + entry.weights.all.map { "\($0.weight)" }
                    + [String(format: "%.3f%%", entry.effectivePercent)]
            })
        }
        out += "\nexpected duration: \(formatDuration(plan.expected)) if every gate passes at the first bake\n"
        return out
    }
}
