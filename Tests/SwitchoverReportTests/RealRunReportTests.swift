import Foundation
import SwitchoverCore
@testable import SwitchoverReport
import SwitchoverStore
import SwitchoverTestKit
import Testing

/// The report of a REAL run, not of a simulated journal: nginx backends blue-1 and green-1, a
/// real HAProxy in front, `hey` sending load, and the built `switchover` binary running a short
/// cutover and then writing the report with `switchover report`. What a real journal holds that
/// a simulated one may not (the runtime's own JSON notes, intent and result rows, 250 ms
/// samples of integer counters, a step that lasts less than one sampling) is what this checks.
final class RealRunLab: @unchecked Sendable {
    let folder: URL
    let blue: NginxBackend
    let green: NginxBackend
    let haproxy: HAProxyServer
    let statePath: String
    var loads: [ManagedProcess] = []

    init(_ name: String, steps: [Int], bake: String, hardSignal: Bool) async throws {
        folder = try TemporaryDirectory.make(name)
        blue = try await NginxBackend.start(name: "blue-1", in: folder)
        green = try await NginxBackend.start(name: "green-1", in: folder)
        haproxy = try await HAProxyServer.start(servers: [.init(name: "blue-1", address: blue.address, weight: 1),
                                                          .init(name: "green-1", address: green.address, weight: 0)], in: folder)
        statePath = folder.appendingPathComponent("state/state.db").path
        try await writeConfiguration(steps: steps, bake: bake, hardSignal: hardSignal)
    }

    deinit {
        stopAll()
        try? FileManager.default.removeItem(at: folder)
    }

    /// Stops every process without waiting for them to exit: for `defer` and `deinit`.
    func stopAll() {
        for load in loads { load.stopInBackground(grace: 1) }
        haproxy.stopInBackground()
        blue.stopInBackground()
        green.stopInBackground()
    }

    private func writeConfiguration(steps: [Int], bake: String, hardSignal: Bool) async throws {
        let trust = try await ConfigDocuments.sharedTrust(in: folder, clusters: ["blue", "green"])
        let clusters = [("blue", blue), ("green", green)].map { name, backend in
            ClusterDocument(name: name, rootCerts: trust[name]!.roots.path, certChain: trust[name]!.chain.path,
                            servers: ["\(name)-1"], health: "http://\(backend.address)/healthz")
        }
        let policy = PolicyDocument(
            name: "test", loadBalancer: PolicyDocument.haproxy(socket: haproxy.socketPath), steps: steps, bake: bake,
            interval: "500ms", sampling: "250ms", failureThreshold: 2, pauseAfterErrors: 2,
            gates: ["name: green-errors\nloadBalancer: {cluster: green, max5xxRatio: 0.05, minRequests: 5}"],
            hardSignal: hardSignal ? (0.2, 10) : nil, drain: PolicyDocument.drain(holdFor: "1s", timeout: "1m"))
        try ConfigDocuments.write(clusters: clusters, policies: [policy], in: folder)
    }

    var globalArguments: [String] {
        ["--clusters", folder.appendingPathComponent("clusters").path,
         "--policies", folder.appendingPathComponent("policies").path,
         "--state", statePath]
    }

    /// `hey` at 200 requests a second for `seconds`: 20 keep-alive workers at 10 a second each,
    /// in five processes of four started 20 ms apart.
    ///
    /// Each worker waits for its answer before its next request, so a worker can hold its rate
    /// only while answers take less than 1/rate: 100 ms here, not the 20 ms four workers at 50
    /// would leave, which a machine busy with other tests exceeds, and the offered load sags.
    /// Five processes: one hey starts every worker's 100 ms ticker at the same instant, so 20
    /// workers in one process send in bursts of 20 every 100 ms, and a 250 ms sample holds two
    /// bursts or three (30 or 45 of blue's requests at 75%, seen in a parallel run). A 1 s window
    /// then moves by a whole burst, 10% of its rate, whenever a sample is read a few milliseconds
    /// off its time. Staggered, the bursts are four requests every 20 ms or so.
    func startLoad(seconds: Int) async throws {
        let hey = try Tools.require("hey")
        for index in 1...5 {
            if index > 1 { try await Task.sleep(for: .milliseconds(20)) }
            loads.append(try ManagedProcess(name: "hey \(index)", executable: hey,
                                            arguments: ["-z", "\(seconds)s", "-q", "10", "-c", "4", haproxy.url],
                                            logFile: folder.appendingPathComponent("hey-\(index).log")))
        }
    }

    func startCoordinator() throws -> ManagedProcess {
        try ManagedProcess(name: "switchover run", executable: try switchoverExecutable().path,
                           arguments: ["run", "blue", "green", "--policy", "test"] + globalArguments,
                           logFile: folder.appendingPathComponent("run.log"))
    }

    /// The latest run's journaled engine state.
    func state() -> CutoverState? {
        guard FileManager.default.fileExists(atPath: statePath), let journal = try? SQLiteJournal(path: statePath),
              let run = try? journal.latestRun() else { return nil }
        return try? journal.loadCutoverState(run: run.id)
    }

    func waitFor(_ what: String, process: ManagedProcess, timeout: TimeInterval = 20,
                 _ condition: (CutoverState) -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while ContinuousClock.now < deadline {
            if let state = state(), condition(state) { return }
            if !process.isRunning { throw TestKitError("coordinator exited before \(what):\n\(process.logTail(lines: 40))") }
            await Wait.pause(.milliseconds(50))
        }
        throw TestKitError("timed out waiting for \(what)\n\(process.logTail(lines: 40))")
    }

    func waitForExit(_ process: ManagedProcess, timeout: TimeInterval = 30) async throws -> Int32 {
        guard await process.waitForExit(timeout: timeout), let status = process.exitStatus else {
            throw TestKitError("coordinator still running after \(timeout)s:\n\(process.logTail(lines: 40))")
        }
        return status
    }

    /// `switchover report` (the built binary) for the newest run; returns the page's file.
    func report() async throws -> URL {
        let out = folder.appendingPathComponent("report.html")
        let result = try await runSwitchover(["report", "--out", out.path] + globalArguments, cwd: folder)
        guard result.exitCode == 0 else { throw TestKitError("switchover report failed (\(result.exitCode)): \(result.stderr)") }
        return out
    }
}

/// `.serialized`: each test ends in a Chromium, which takes most of a core for seconds (as in
/// `ReportChromiumTests`).
@Suite(.serialized) struct RealRunReportTests {
    @Test("the report of a real run to drained loads in Chromium with every series, the drain, read-backs and plain sentences")
    func promotedRun() async throws {
        let lab = try await RealRunLab("report-real-promoted", steps: [25, 100], bake: "2500ms", hardSignal: false)
        defer { lab.stopAll() }
        try await lab.startLoad(seconds: 15)
        let coordinator = try lab.startCoordinator()
        defer { coordinator.stopInBackground() }
        #expect(try await lab.waitForExit(coordinator) == 0, "\(coordinator.logTail(lines: 30))")

        let page = try await lab.report()
        let html = try String(contentsOf: page, encoding: .utf8)
        let chromium = try HeadlessChromium(folder: lab.folder)
        let dom = try await chromium.run(["--dump-dom"], url: page, name: "dom")
        #expect(pageErrors(dom.log).isEmpty, "page errors:\n\(pageErrors(dom.log).joined(separator: "\n"))")
        // The policy has a drain section, so `run` goes on past promoted until blue is drained.
        #expect(dom.stdout.contains("data-outcome=\"drained\""))
        #expect(dom.stdout.contains("<strong>drained</strong> — blue drained at "))
        let drain = try #require(chart(dom.stdout, "drain"), "no drain chart")
        #expect(count("data-series=", in: drain) == 1)
        #expect(drain.contains("data-mark=\"hold\"") && drain.contains("data-mark=\"drained\""))
        #expect(dom.stdout.contains("<dt>Steps reached</dt><dd>2 of 2</dd>"))
        let timeline = try #require(chart(dom.stdout, "timeline"), "no timeline chart in the DOM; log:\n\(dom.log)")
        // Weight, requests/s and 5xx/s for each cluster.
        for series in ["weight:blue", "weight:green", "rps:blue", "rps:green", "5xx:blue", "5xx:green"] {
            let d = try #require(seriesPath(timeline, series), "no series \(series)")
            #expect(d.count > 20, "\(series) is nearly empty: \(d)")
        }
        #expect(count("data-series=", in: timeline) == 6)
        #expect(timeline.contains("data-marker=\"promoted\""))
        #expect(count("<circle data-verdict=\"pass\"", in: timeline) >= 2)

        // No journal row is shown as raw JSON; the runtime's notes and the weight changes read
        // as sentences.
        #expect(!html.contains("<span class=\"raw\">"), "raw rows: \(rawRows(html))")
        #expect(html.contains("set 25% to green for step 1 (intent 1)"))
        #expect(html.contains("read back: blue-1=") && html.contains("→ 100.0% to green (intent 2)"))
        #expect(html.contains("coordinator pid \(coordinator.pid) started run 1"))

        // Real 250 ms samples of integer counters: while the weights hold still (step 1, once a
        // whole window lies inside it) hey's steady load gives a calm windowed line, calmer
        // than rates between neighbouring samples. They hold still from step 1's read-back until
        // step 2's intent, journaled just before its write: not until step 2's read-back, which
        // on a busy machine comes a few hundred milliseconds after traffic has already moved.
        let data = try ReportData.load(from: try SQLiteJournal(path: lab.statePath))
        let analysis = Analysis(data)
        let readBacks = analysis.readBacks.map { analysis.rel($0.at) }
        try #require(readBacks.count == 2, "\(readBacks)")
        let writes = data.events.filter { $0.kind == "intent" && $0.detail.contains("\"setWeights\"") }.map { analysis.rel($0.at) }
        try #require(writes.count == 2, "\(writes)")
        let steady = (readBacks[0] + rateWindow)...writes[1]
        let samples = data.samples["blue"] ?? []
        let windowed = rates(samples, start: data.run.startedAt) { $0.responses }.joined().filter { steady.contains($0.t) }.map(\.v)
        let neighbours = rates(samples, start: data.run.startedAt, window: 0) { $0.responses }.joined().filter { steady.contains($0.t) }.map(\.v)
        try #require(windowed.count >= 3, "step 1 too short for a steady stretch: \(steady)")
        let spread = windowed.max()! - windowed.min()!
        let mean = windowed.reduce(0, +) / Double(windowed.count)
        // What the rates were made of, for a failure: each sample's time (s into the run) and blue's count.
        let counted = samples.filter { ((readBacks[0] - 1)...writes[1]).contains(analysis.rel($0.at)) }
            .map { String(format: "%.3f", analysis.rel($0.at)) + ":\($0.counters.responses)" }.joined(separator: " ")
        #expect(spread < 0.1 * mean, "windowed \(windowed); samples \(counted)")
        #expect(spread <= neighbours.max()! - neighbours.min()!, "windowed \(windowed), neighbours \(neighbours); samples \(counted)")
    }

    @Test("the report of a real rolled-back run shows the rollback (read back after the last sample) and green's 5xx")
    func rolledBackRun() async throws {
        let lab = try await RealRunLab("report-real-rollback", steps: [50, 100], bake: "20s", hardSignal: true)
        defer { lab.stopAll() }
        try await lab.startLoad(seconds: 15)
        let coordinator = try lab.startCoordinator()
        defer { coordinator.stopInBackground() }
        try await lab.waitFor("step 1 baking", process: coordinator) { $0.step == 1 && $0.stepStartedAt != nil }
        try await Task.sleep(for: .seconds(1))
        try lab.green.fail(true)
        #expect(try await lab.waitForExit(coordinator) == 1, "\(coordinator.logTail(lines: 30))")

        let page = try await lab.report()
        let html = try String(contentsOf: page, encoding: .utf8)
        let dom = try await HeadlessChromium(folder: lab.folder).run(["--dump-dom"], url: page, name: "dom")
        #expect(pageErrors(dom.log).isEmpty, "page errors:\n\(pageErrors(dom.log).joined(separator: "\n"))")
        #expect(dom.stdout.contains("data-outcome=\"rolledBack\""))
        #expect(dom.stdout.contains("<strong>rolled back</strong> — at "))
        #expect(dom.stdout.contains("all traffic back on blue"))
        let timeline = try #require(chart(dom.stdout, "timeline"))
        #expect(count("data-series=", in: timeline) == 6)
        #expect(timeline.contains("data-marker=\"rollback\""))
        #expect(timeline.contains("data-marker=\"rollbackVerified\""))
        #expect(!html.contains("<span class=\"raw\">"), "raw rows: \(rawRows(html))")
        #expect(html.contains("set 0% to green: rollback"))

        // The weight line ends on the rollback's read-back (0% to green), which no sample
        // caught: the run stopped right after it.
        let data = try ReportData.load(from: try SQLiteJournal(path: lab.statePath))
        let green = Analysis(data).weightSeries("green")
        #expect(green.last?.v == 0, "\(green.suffix(4))")
        #expect(green.contains { $0.v == 50 })
        // Green's 5xx show on the chart.
        let errors = rates(data.samples["green"] ?? [], start: data.run.startedAt) { $0.responses5xx }.joined()
        #expect(errors.contains { $0.v > 0 })
    }

    private func rawRows(_ html: String) -> [String] {
        html.components(separatedBy: "<span class=\"raw\">").dropFirst().map { String($0.prefix(160)) }
    }
}
