import Foundation
import SwitchoverTestKit

/// Split accuracy: at each step of a real `switchover run` (two blue and two green nginx
/// servers behind HAProxy), once HAProxy's live weights are the plan's for that step, 2,000
/// requests from `hey`; the share that reached green is counted in green's nginx access logs and
/// compared with the effective share `switchover plan --output json` gives for the step.
enum SplitFigure {
    static let steps = [1, 5, 10, 25, 50, 75, 100]
    static let requestsPerStep = 2_000

    struct PlannedStep {
        var percent: Double
        var effective: Double
        var weights: [String: Int]
    }

    static func measure(switchover: String, quick: Bool) throws -> [FigureRow] {
        progress("split accuracy: steps \(steps.map(String.init).joined(separator: ", ")), \(requestsPerStep) requests per step, 2 blue + 2 green servers")
        let lab = try BenchLab("split", switchover: switchover, blueServers: 2, greenServers: 2)
        defer { lab.close() }
        // No gate: the bake alone moves the run on, long enough for 2,000 requests under load.
        try lab.writePolicy("split", steps: steps, bake: quick ? "3s" : "4s", gate: false, hardSignal: false)
        let planned = try plan(lab)

        let coordinator = try lab.startCoordinator(policy: "split", log: "run.log")
        defer { coordinator.stop() }
        var errors: [Double] = []
        var detail: [String] = []
        for step in planned where step.percent < 100 {
            guard try waitUntil(timeout: 60, { try lab.weights() == step.weights }) else {
                throw TestKitError("split: HAProxy never showed step \(step.percent)%'s weights \(step.weights):\n\(coordinator.logTail())")
            }
            let greenBefore = try lab.green.reduce(0) { $0 + (try $1.requestCount()) }
            let allBefore = try (lab.blue + lab.green).reduce(0) { $0 + (try $1.requestCount()) }
            let result = try Load.hey(lab.haproxy.url, requests: requestsPerStep, concurrency: 10)
            guard try lab.weights() == step.weights else {
                throw TestKitError("split: the step moved on before \(requestsPerStep) requests were done; lengthen the bake")
            }
            let green = try lab.green.reduce(0) { $0 + (try $1.requestCount()) } - greenBefore
            let all = try (lab.blue + lab.green).reduce(0) { $0 + (try $1.requestCount()) } - allBefore
            guard all >= requestsPerStep, result.statusCounts[200] == requestsPerStep else {
                throw TestKitError("split: step \(step.percent)%: \(all) requests counted at the backends, hey saw \(result.statusCounts)")
            }
            let measured = Double(green) / Double(all) * 100
            errors.append(abs(measured - step.effective))
            detail.append(String(format: "%g%%: %.2f vs %.3f", step.percent, measured, step.effective))
            progress(String(format: "  step %g%%: %d of %d at green = %.3f%%, plan's effective %.3f%%", step.percent, green, all, measured, step.effective))
        }
        _ = coordinator.waitForExit(timeout: 30)
        return [Stats(errors).row("split accuracy: error of the share at green's nginx vs the plan's effective share", unit: "pp",
                                  reference: 1, referenceLabel: "1 percentage point",
                                  note: "\(requestsPerStep) requests per step; " + detail.joined(separator: "; "))]
    }

    /// The plan's steps: percent, effective share and the weight of every server.
    static func plan(_ lab: BenchLab) throws -> [PlannedStep] {
        let result = try lab.switchoverCommand(["plan", "blue", "green", "--policy", "split", "--output", "json"])
        guard result.status == 0,
              let start = result.output.firstIndex(of: "{"),
              let object = try JSONSerialization.jsonObject(with: Data(result.output[start...].utf8)) as? [String: Any],
              let steps = object["steps"] as? [[String: Any]] else {
            throw TestKitError("switchover plan failed:\n\(result.output)")
        }
        return try steps.map { step in
            guard let percent = (step["percent"] as? NSNumber)?.doubleValue,
                  let effective = (step["effectivePercent"] as? NSNumber)?.doubleValue,
                  let weights = (step["weights"] as? [String: Any])?.compactMapValues({ ($0 as? Int) ?? ($0 as? NSNumber)?.intValue }) else { throw TestKitError("plan step: \(step)") }
            return PlannedStep(percent: percent, effective: effective, weights: weights)
        }
    }
}
