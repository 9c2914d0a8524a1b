import Foundation
import SwitchoverTestKit
#if canImport(Glibc)
import Glibc
#endif

/// Resume after SIGKILL: a run sits at 25% to green under light load; per trial the benchmark
/// kills the coordinator with SIGKILL, starts `switchover run` again on the same journal and
/// measures the time from that start to the first new row in the journal's `samples` table,
/// read with the `sqlite3` command every 10 ms. A resumed coordinator verifies the live weights
/// against the journal (and re-applies an unfinished intent) before its first sample, so that
/// row is the first sample taken with the journaled weights verified. HAProxy's weights are
/// checked to be still the step's after each restart.
enum ResumeFigure {
    static func measure(trials: Int, switchover: String) throws -> [FigureRow] {
        progress("resume after SIGKILL: \(trials) trials")
        let sqlite = try Tools.require("sqlite3")
        let lab = try BenchLab("resume", switchover: switchover)
        defer { lab.close() }
        try lab.writePolicy("resume", steps: [25, 100], bake: "10m", gate: false, hardSignal: false)
        let hey = try lab.startLoad(rate: 25, workers: 4, seconds: 300, log: "hey.log")
        defer { hey.stop() }
        var coordinator = try lab.startCoordinator(policy: "resume", log: "run-0.log")
        defer { coordinator.stop() }

        func lastSample() -> Int {
            guard let result = try? Command.run(sqlite, [lab.statePath, "SELECT coalesce(max(rowid), 0) FROM samples"]),
                  result.status == 0 else { return -1 }
            return Int(result.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }
        guard try waitUntil(timeout: 30, { try lab.weights()["green-1"] != 0 }) else {
            throw TestKitError("resume: green never got traffic:\n\(coordinator.logTail())")
        }
        let stepWeights = try lab.weights()
        guard waitUntil(timeout: 10, poll: 0.1, { lastSample() >= 4 }) else { throw TestKitError("resume: no samples journaled") }

        var times: [Double] = []
        for trial in 1...trials {
            coordinator.signal(SIGKILL)
            guard coordinator.waitForExit(timeout: 10) else { throw TestKitError("resume: SIGKILL did not end the coordinator") }
            let before = lastSample()
            let start = ContinuousClock.now
            coordinator = try lab.startCoordinator(policy: "resume", log: "run-\(trial).log")
            guard waitUntil(timeout: 15, poll: 0.01, { lastSample() > before }) else {
                throw TestKitError("resume trial \(trial): no sample within 15 s:\n\(coordinator.logTail())")
            }
            let elapsed = seconds(since: start) * 1000
            guard try lab.weights() == stepWeights else { throw TestKitError("resume trial \(trial): weights changed: \(try lab.weights())") }
            times.append(elapsed)
            progress("  trial \(trial): \(Int(elapsed)) ms")
            usleep(500_000)
        }
        return [Stats(times).row("resume after SIGKILL: restart → first journaled sample", unit: "ms", reference: 1_000,
                                 referenceLabel: "1 s",
                                 note: "new row in the journal's samples table (sqlite3 polled every 10 ms; one poll ≈ one sqlite3 process), weights re-verified at HAProxy")]
    }
}
