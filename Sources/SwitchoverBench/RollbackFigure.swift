import Foundation
import SwitchoverCore
import SwitchoverNet
import SwitchoverStore
import SwitchoverTestKit

/// Rollback reaction and the requests it costs.
///
/// Per trial: a fresh journal, `switchover run` with steps 25 → 100 and a long bake, so the run
/// sits at 25% to green under `hey` load; then green's nginx starts answering 503 (its fail
/// file, at a random point of the sampling period) and the benchmark polls HAProxy's runtime API every 10 ms until the weights read 100/0.
/// The coordinator's hard signal (green's 5xx ratio in one 250 ms sample) is what rolls back.
///
/// Then half as many trials (at least 4) with every event of the run told to a notification
/// receiver that answers after 30 s: their median against the plain trials' (same run) shows
/// whether a slow receiver delays a rollback.
///
/// Failed requests are hey's non-2xx (and transport errors) over the trial; their reference is
/// what reached green between the fault and the observed rollback, from HAProxy's per-server
/// response counters.
///
/// The trials journal in the lab's SQLite file; `HAFigure` runs the same trials with the journal
/// in etcd (`runTrials(journals:)`).
enum RollbackFigure {
    static let rate = 50, workers = 6 // 300 requests/s

    static func measure(trials: Int, switchover: String) throws -> [FigureRow] {
        progress("rollback: \(trials) trials at \(rate * workers) req/s, 25% to green, fault = nginx 503")
        let lab = try Self.lab("rollback", switchover: switchover)
        defer { lab.close() }

        // One runtime-API round trip, as the rollback's write makes it: setting green's weight to
        // the 0 it already has (no traffic moves).
        var roundTrips: [Double] = []
        for _ in 0..<200 {
            let start = ContinuousClock.now
            _ = try lab.admin.sendBlocking("set weight app/green-1 0")
            roundTrips.append(seconds(since: start) * 1000)
        }
        let roundTrip = Stats(roundTrips)
        let limit = 250 + roundTrip.median

        let plain = try runTrials(trials, policy: "rollback", lab: lab)[0]
        // The same trials with every event of the run told to a receiver that takes 30 s per
        // request (issue 17: a slow receiver must not delay a rollback).
        let receiver = try HookReceiver(blockingIn: lab.folder)
        defer { receiver.stopInBackground() }
        try receiver.answer("slow", status: 200, delay: 30)
        try lab.writePolicy("rollback-notify", steps: [25, 100], bake: "10m", gate: false, hardSignal: true, extraSpec: [
            "notifications:",
            "  - {name: pager, url: \(receiver.url("slow")), format: json, timeout: 60s, events: [\(NotificationEvents.known.joined(separator: ", "))]}",
        ])
        let slow = try runTrials(max(4, trials / 2), policy: "rollback-notify", lab: lab)[0]
        let (reactions, failed, reached, atRate) = (plain.reactions, plain.failed, plain.reached, plain.atRate)
        let reaction = Stats(reactions)
        let reachedStats = Stats(reached)
        let rtt = String(format: "%.2f ms (p10–p90 %.2f–%.2f, 200 round trips)", roundTrip.median, roundTrip.percentile(0.1), roundTrip.percentile(0.9))
        return [
            reaction.row("rollback reaction vs Flagger", unit: "ms", reference: 10_000,
                         referenceLabel: "Flagger's floor: one analysis interval, 10 s",
                         note: "fault (nginx 503) → HAProxy reads 100/0, polled every 10 ms; \(rate * workers) req/s, 25% to green"),
            reaction.row("rollback reaction vs physical limit", unit: "ms", reference: limit,
                         referenceLabel: "one sampling period 250 ms + one runtime-API round trip \(rtt) = " + String(format: "%.1f ms", limit),
                         note: "same trials; the limit is the worst case (a fault just after a sample waits one whole period), so a median under it is expected; "
                             + String(format: "slowest trial %.0f ms = %.2f× the limit (journal fsync, apply and read-back on top)", reaction.max, reaction.max / limit)),
            Stats(failed).row("failed requests during a rollback", unit: "requests", reference: reachedStats.median,
                              referenceLabel: String(format: "requests that reached green between fault and rollback (HAProxy counters): median %.0f (%.0f–%.0f); rate × 25%% × reaction: median %.0f",
                                                     reachedStats.median, reachedStats.min, reachedStats.max, Stats(atRate).median),
                              note: "hey's non-2xx + errors in the same trials"),
            Stats(slow.reactions).row("rollback reaction, notifications to a receiver taking 30 s", unit: "ms", reference: reaction.median,
                                      referenceLabel: "the rollback reaction above, same run, no notifications",
                                      note: "\(slow.reactions.count) trials; every event told (json) to a receiver that answers after 30 s; the run ends 2 s after its rollback at most"),
        ]
    }

    /// A lab with the figure's policy `rollback`: steps 25 → 100, a long bake, the hard signal.
    static func lab(_ name: String, switchover: String) throws -> BenchLab {
        let lab = try BenchLab(name, switchover: switchover)
        do {
            try lab.writePolicy("rollback", steps: [25, 100], bake: "10m", gate: false, hardSignal: true)
        } catch {
            lab.close()
            throw error
        }
        return lab
    }

    /// What the trials on one kind of journal measured, trial by trial.
    struct Trials {
        var reactions: [Double] = [], failed: [Double] = [], reached: [Double] = [], atRate: [Double] = []
        /// From the sample the coordinator decided on (its `rollbackStarted` event's time, by its
        /// clock, in ms) to HAProxy read at 100/0 (by the benchmark's, the same machine's): the
        /// reaction without the wait for a sample, which is where the journal's writes fall.
        var afterDecision: [Double] = []
    }

    /// `count` trials of policy `policy` per journal kind: fault, then HAProxy polled until it
    /// reads 100/0. With several `journals`, trial by trial in turn (one of each, then again), so
    /// that they share the machine's conditions; one `Trials` per journal, in their order.
    static func runTrials(_ count: Int, policy: String, lab: BenchLab, journals: [TrialJournal] = [.sqlite]) throws -> [Trials] {
        var results = journals.map { _ in Trials() }
        for trial in 1...count {
            for (kind, journal) in journals.enumerated() {
                try runTrial(trial, policy: policy, lab: lab, journal: journal, label: journals.count > 1 ? "\(policy) \(journal.name)" : policy,
                             into: &results[kind])
            }
        }
        return results
    }

    /// One trial on a fresh journal of kind `journal`, added to `results`.
    static func runTrial(_ trial: Int, policy: String, lab: BenchLab, journal: TrialJournal, label: String, into results: inout Trials) throws {
        let name = label.replacingOccurrences(of: " ", with: "-")
        try lab.green[0].fail(false)
        let hey = try lab.startLoad(rate: rate, workers: workers, seconds: 60, log: "hey-\(name)-\(trial).log")
        let state = journal.fresh(lab, name: "\(name)-\(trial)")
        let coordinator = try lab.startCoordinator(policy: policy, state: state, log: "run-\(name)-\(trial).log")
        defer { coordinator.stop(); hey.stop() }
        guard try waitUntil(timeout: 30, { try lab.weights()["green-1"] != 0 }) else {
            throw TestKitError("\(label) trial \(trial): green never got traffic:\n\(coordinator.logTail())")
        }
        // A few samples at 25% before the fault, which lands at a random point of the 250 ms
        // sampling period: the coordinator's samples keep a fixed phase from its start.
        usleep(1_500_000 + UInt32.random(in: 0..<250_000))
        let before = try lab.serverCounters()["green-1"]?.total ?? 0
        let start = ContinuousClock.now
        try lab.green[0].fail(true)
        let rolledBack = try waitUntil(timeout: 10, poll: 0.01) {
            let live = try lab.weights()
            return live["green-1"] == 0 && (live["blue-1"] ?? 0) > 0
        }
        let reaction = seconds(since: start) * 1000
        let seenAt = Instant(Date())
        guard rolledBack else { throw TestKitError("\(label) trial \(trial): no rollback within 10 s:\n\(coordinator.logTail())") }
        let after = try lab.serverCounters()["green-1"]?.total ?? 0
        _ = coordinator.waitForExit(timeout: 10)
        usleep(200_000) // answers in flight at the rollback reach hey
        let report = try HeyReport.finish(hey)
        results.reactions.append(reaction)
        results.failed.append(Double(report.failed))
        results.reached.append(Double(after - before))
        results.atRate.append(Double(rate * workers) * 0.25 * reaction / 1000)
        let journaled = try journal.open(state)
        guard let run = try journaled.latestRun(), let decided = try journaled.lastEvent(run: run.id, kind: "rollbackStarted") else {
            throw TestKitError("\(label) trial \(trial): no rollbackStarted in the journal:\n\(coordinator.logTail())")
        }
        results.afterDecision.append(Double(seenAt.millisecondsSinceEpoch - decided.at.millisecondsSinceEpoch))
        progress("  \(label) trial \(trial): \(Int(reaction)) ms, \(report.failed) failed, \(after - before) reached green (coordinator exit \(coordinator.exitStatus.map(String.init) ?? "?"))")
    }
}
