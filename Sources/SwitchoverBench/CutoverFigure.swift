import Foundation
import SwitchoverTestKit
#if canImport(Glibc)
import Glibc
#endif

/// Zero-loss cutover and the coordinator's footprint, from the same runs.
///
/// Per trial, in a lab of its own (blue's nginx is stopped at the end): `hey` at 1,200 requests
/// per second from a second before the coordinator starts to two seconds after blue's backend is
/// gone; `switchover run --until drained` through every step with a gate on green's errors and
/// 250 ms sampling and blue's drain, then `switchover decommission blue`; then blue's
/// nginx is stopped. Failed requests are hey's non-2xx and transport errors. Meanwhile the
/// benchmark reads the coordinator's `/proc/<pid>/status` (VmHWM) and `/proc/<pid>/stat`
/// (utime + stime) every 100 ms.
enum CutoverFigure {
    static let rate = 100, workers = 12 // 1,200 requests/s

    static func measure(trials: Int, switchover: String, quick: Bool) throws -> [FigureRow] {
        progress("zero-loss cutover: \(trials) trial(s) at \(rate * workers) req/s, through drain and decommission")
        var failed: [Double] = [], totals: [Double] = [], rates: [Double] = []
        var anons: [Double] = [], files: [Double] = []
        var peaks: [Double] = [], cpus: [Double] = [], steadyCPUs: [Double] = [], runSeconds: [Double] = []
        var mapping: MappingRSS?  // of the last trial
        for trial in 1...trials {
            let lab = try BenchLab("cutover", switchover: switchover)
            defer { lab.close() }
            try lab.writePolicy("cutover", steps: [10, 25, 50, 100], bake: quick ? "2s" : "3s", gate: true,
                                hardSignal: true, holdFor: "1s")
            let hey = try lab.startLoad(rate: rate, workers: workers, seconds: 300, log: "hey.log")
            defer { hey.stop() }
            usleep(1_000_000)
            let coordinator = try lab.startCoordinator(policy: "cutover", extra: ["--until", "drained"], log: "run.log")
            defer { coordinator.stop() }
            let start = ContinuousClock.now
            var last: ProcReading?
            var lastAt = 0.0
            var settled: (reading: ProcReading, at: Double)? // after start-up and preflight
            var mappedPeak = 0
            while coordinator.isRunning {
                if let reading = ProcReading.read(coordinator.pid) {
                    last = reading
                    lastAt = seconds(since: start)
                    if settled == nil && lastAt >= 2 { settled = (reading, lastAt) }
                    // Per mapping whenever the peak grew: a few reads of the (large) smaps per run,
                    // the last one at the peak.
                    if reading.peakRSSKiB > mappedPeak, let read = MappingRSS.read(coordinator.pid) {
                        mapping = read
                        mappedPeak = reading.peakRSSKiB
                    }
                }
                usleep(100_000)
                guard seconds(since: start) < 180 else { throw TestKitError("cutover trial \(trial): no end within 180 s:\n\(coordinator.logTail())") }
            }
            guard coordinator.exitStatus == 0 else {
                throw TestKitError("cutover trial \(trial): switchover run exited \(coordinator.exitStatus.map(String.init) ?? "?"):\n\(coordinator.logTail())")
            }
            let decommission = try lab.switchoverCommand(["decommission", "blue"])
            guard decommission.status == 0 else { throw TestKitError("decommission refused:\n\(decommission.output)") }
            for backend in lab.blue { backend.stop() }
            usleep(2_000_000)
            let report = try HeyReport.finish(hey)
            guard let last else { throw TestKitError("cutover trial \(trial): /proc of the coordinator was never readable") }
            failed.append(Double(report.failed))
            totals.append(Double(report.responses + report.errors))
            rates.append(report.requestsPerSecond)
            peaks.append(Double(last.peakRSSKiB) / 1024)
            anons.append(Double(last.rssAnonKiB) / 1024)
            files.append(Double(last.rssFileKiB) / 1024)
            cpus.append(last.cpuSeconds / lastAt * 1000)
            if let settled, lastAt > settled.at + 1 {
                steadyCPUs.append((last.cpuSeconds - settled.reading.cpuSeconds) / (lastAt - settled.at) * 1000)
            }
            runSeconds.append(lastAt)
            progress(String(format: "  trial %d: %d failed of %d, %.0f req/s; coordinator %.1f s, peak RSS %.1f MiB, mean CPU %.1f m",
                            trial, report.failed, report.responses + report.errors, report.requestsPerSecond, lastAt,
                            Double(last.peakRSSKiB) / 1024, last.cpuSeconds / lastAt * 1000))
        }
        let how = "steps 10/25/50/100, drain (`--until drained`), `decommission blue`, blue's nginx stopped"
        let rateStats = Stats(rates)
        return [
            Stats(failed).row("zero-loss cutover: failed requests", unit: "requests", reference: 0, referenceLabel: "0 failed",
                              note: how + String(format: "; hey at %.0f req/s achieved (%.0f–%.0f), %.0f requests per trial",
                                           rateStats.median, rateStats.min, rateStats.max, Stats(totals).median)),
            Stats(peaks).row("coordinator peak RSS (VmHWM)", unit: "MiB", reference: 32,
                             referenceLabel: "Flagger's chart request: 32 MiB",
                             note: String(format: "/proc/<pid>/status during the cutover runs above (%.1f s each), 250 ms sampling; resident at the end: %.1f MiB anonymous (heap, stacks), %.1f MiB file-backed (the binary and the shared libraries it maps)",
                                          Stats(runSeconds).median, Stats(anons).median, Stats(files).median)
                                 + (mapping.map { "; per mapping (/proc/<pid>/smaps, last trial, at its peak): " + $0.summary(top: 8) } ?? "")),
            Stats(cpus).row("coordinator mean CPU", unit: "m", reference: 10,
                            referenceLabel: "Flagger's chart request: 10m",
                            note: "utime+stime from /proc/<pid>/stat over the run's wall time, start-up and preflight included"
                                + (steadyCPUs.isEmpty ? "" : String(format: "; from 2 s after start to the end (shifting, 250 ms sampling): %.1f m", Stats(steadyCPUs).median))),
        ]
    }
}
