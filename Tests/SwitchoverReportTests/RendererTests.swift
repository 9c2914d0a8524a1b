import Foundation
@testable import SwitchoverReport
import SwitchoverCore
import SwitchoverStore
import SwitchoverTestKit
import Testing

/// The text of the `<svg data-chart="NAME">` element, or nil.
func chart(_ html: String, _ name: String) -> String? {
    guard let start = html.range(of: "<svg data-chart=\"\(name)\"") else { return nil }
    guard let end = html.range(of: "</svg>", range: start.upperBound..<html.endIndex) else { return nil }
    return String(html[start.lowerBound..<end.upperBound])
}

func count(_ needle: String, in text: String) -> Int {
    text.components(separatedBy: needle).count - 1
}

/// The `d` attribute of the path with `data-series="NAME"`.
func seriesPath(_ svg: String, _ name: String) -> String? {
    guard let start = svg.range(of: "data-series=\"\(name)\" d=\"") else { return nil }
    guard let end = svg.range(of: "\"", range: start.upperBound..<svg.endIndex) else { return nil }
    return String(svg[start.upperBound..<end.lowerBound])
}

/// The (x, y) points of a path (`M`, `L`, `H`/`V` commands), for bounds and counts.
func pathVertexCount(_ d: String) -> Int {
    d.filter { "MLH".contains($0) }.count
}

let demoPolicy = ReportPolicy(stepCount: 4, holdFor: .seconds(10), dnsTTL: .seconds(5))

@Suite struct ReportRendererTests {
    @Test("a record TTL read from Route53 longer than the policy's dnsTTL is the drain's TTL mark and note")
    func recordTTLInTheDrainChart() throws {
        let journal = MemoryJournal()
        _ = try RecordedRun.healthy(journal)
        var data = try ReportData.load(from: journal, policy: demoPolicy)
        let before = try #require(Analysis(data).dnsTTLEnds)
        try #require(data.finalState?.drain != nil)
        data.finalState?.drain?.recordTTL = .seconds(30)
        let html = renderReport(data)
        #expect(html.contains("DNS TTL 30 s (the record&#39;s, read from the load balancer; the policy&#39;s is 5 s)")
                || html.contains("DNS TTL 30 s (the record's, read from the load balancer; the policy's is 5 s)"), "\(html)")
        #expect(abs(try #require(Analysis(data).dnsTTLEnds) - before - 25) < 0.001)
    }

    @Test func healthyRunHasEverySeriesMarkerAndSection() throws {
        let journal = MemoryJournal()
        let recorded = try RecordedRun.healthy(journal)
        let data = try ReportData.load(from: journal, policy: demoPolicy)
        #expect(data.events.count > 50)
        #expect(data.samples["blue"]?.count == recorded.sampleCount)
        let html = renderReport(data)

        let timeline = try #require(chart(html, "timeline"))
        // Weight, request rate and 5xx rate of each of the two clusters.
        #expect(count("data-series=", in: timeline) == 6)
        for name in ["weight:blue", "weight:green", "rps:blue", "rps:green", "5xx:blue", "5xx:green"] {
            #expect(seriesPath(timeline, name) != nil, "missing series \(name)")
        }
        // Every gate evaluation is one dot of its verdict's colour.
        #expect(count("<circle data-verdict=", in: timeline) == data.gateEvaluations.count)
        #expect(count("data-verdict=\"inconclusive\"", in: timeline) == 1)
        #expect(count("data-verdict=\"pass\"", in: timeline) == data.gateEvaluations.count - 1)
        for marker in ["pause", "resume", "promoted", "drain", "drained"] {
            #expect(timeline.contains("data-marker=\"\(marker)\""), "missing marker \(marker)")
        }
        #expect(!timeline.contains("data-marker=\"rollback\""))

        let drain = try #require(chart(html, "drain"))
        #expect(count("data-series=", in: drain) == 1)
        #expect(drain.contains("data-series=\"sessions:blue\""))
        #expect(drain.contains("data-mark=\"hold\""))
        #expect(drain.contains("data-mark=\"dnsTTL\""))

        #expect(html.contains("data-outcome=\"drained\""))
        #expect(html.contains("4 of 4"))
        #expect(html.contains("data-trust=\"trusted\""))
        #expect(html.contains("3F:<wbr>9A:<wbr>0C:<wbr>4E"), "fingerprints are shown in colon-separated pairs")
        #expect(html.contains("<span class=\"badge warn\">warn</span>"))
        // Self-contained: nothing is fetched.
        #expect(!html.contains("<script"))
        #expect(!html.contains("<link"))
        #expect(!html.contains("src="))
        #expect(!html.contains("url("))
    }

    @Test func rolledBackRunNamesTheGateAndTheRollbackTime() throws {
        let journal = MemoryJournal()
        _ = try RecordedRun.rolledBack(journal)
        let html = renderReport(try ReportData.load(from: journal))
        #expect(html.contains("data-outcome=\"rolledBack\""))
        #expect(html.contains("<strong>rolled back</strong>"))
        #expect(html.contains("at 0:36: gate green-5xx failed 2 times in step 2"))
        #expect(html.contains("all traffic back on blue 1.2 s later"))
        #expect(html.contains("Steps reached</dt><dd>2</dd>"))
        let timeline = try #require(chart(html, "timeline"))
        #expect(count("data-verdict=\"fail\"", in: timeline) == 2)
        #expect(timeline.contains("data-marker=\"rollback\""))
        #expect(timeline.contains("data-marker=\"rollbackVerified\""))
        #expect(chart(html, "drain") == nil)
        #expect(html.contains("blue was not drained in this run."))
        // The 5xx of green shows as a rate above zero once it starts failing.
        let errors = try #require(seriesPath(timeline, "5xx:green"))
        let ys = errors.split(whereSeparator: { "MLHV".contains($0) }).compactMap { Double($0.split(separator: " ").last ?? "") }
        #expect(Set(ys).count > 1, "the 5xx line of green is flat: \(errors)")
    }

    @Test func counterResetSplitsTheRateLineInsteadOfDrawingANegativeRate() throws {
        let journal = MemoryJournal()
        _ = try RecordedRun.healthy(journal)
        let html = renderReport(try ReportData.load(from: journal))
        let timeline = try #require(chart(html, "timeline"))
        // The load balancer restarted once (step 3): two segments, so two `M`s.
        let d = try #require(seriesPath(timeline, "rps:blue"))
        #expect(d.filter { $0 == "M" }.count == 2, "\(d.prefix(200))")

        let samples = [ClusterSample(at: .seconds(0), counters: ClusterCounters(responses: 100)),
                       ClusterSample(at: .seconds(1), counters: ClusterCounters(responses: 300)),
                       ClusterSample(at: .seconds(2), counters: ClusterCounters(responses: 10)),
                       ClusterSample(at: .seconds(3), counters: ClusterCounters(responses: 60))]
        let segments = rates(samples, start: .seconds(0)) { $0.responses }
        #expect(segments == [[Point(t: 1, v: 200)], [Point(t: 3, v: 50)]])
    }

    @Test func missingTrustReportIsSaidInsteadOfFailing() throws {
        let journal = MemoryJournal()
        _ = try RecordedRun.healthy(journal, trustJSON: nil)
        let html = renderReport(try ReportData.load(from: journal))
        #expect(html.contains("data-trust=\"absent\""))
        #expect(html.contains("Trust was not verified in this run."))
        // Without the policy the DNS TTL cannot be placed; the hold still can (from the events).
        let drain = try #require(chart(html, "drain"))
        #expect(!drain.contains("data-mark=\"dnsTTL\""))
        #expect(drain.contains("data-mark=\"hold\""))
        #expect(html.contains("DNS TTL unknown"))
    }

    @Test func everyJournalStringIsEscaped() throws {
        let journal = MemoryJournal()
        let evil = "<script>alert(1)</script>"
        let from = "blue\"><img src=x onerror=alert(1)>"
        let to = "green'<svg onload=alert(2)>&"
        let recorded = try RecordedRun.healthy(journal, from: from, to: to,
                                               trustJSON: RecordedRun.sampleTrustJSON(from: evil, to: to))
        try journal.append(JournalEvent(run: recorded.run, at: recorded.now, kind: "note</td><td>\(evil)",
                                        detail: "</table>\(evil)"))
        try recorded.gate("gate\(evil)", .fail("detail \(evil)", value: 1))
        try recorded.event(EngineEvent(.paused, "paused by \(evil)", phase: .paused, evidence: ["who": evil]))
        let html = renderReport(try ReportData.load(from: journal))
        #expect(!html.contains("<script"))
        #expect(!html.contains("<img"))
        #expect(!html.contains("<svg onload"))
        #expect(!html.contains("</td><td><script"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(html.contains("blue&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"))
        #expect(html.contains("green&#39;&lt;svg onload=alert(2)&gt;&amp;"))
        // Only the report's own elements open: one <table> per table the report draws.
        #expect(count("<table", in: html) == 3)
        #expect(count("<svg data-chart=", in: html) == 2)
    }

    @Test func longRunsAreDownsampledToTheBound() throws {
        let journal = MemoryJournal()
        let r = try RecordedRun(journal: journal)
        try r.phase(.shifting, "preflight passed")
        try r.setWeights(50, step: 1, purpose: .step)
        // Three hours at one sample a second: 10,800 samples per cluster, one 5xx spike.
        try r.advance(.seconds(5_000))
        r.toErrorRatio = 0.9
        try r.advance(.seconds(1))
        r.toErrorRatio = 0
        try r.advance(.seconds(5_799))
        let data = try ReportData.load(from: journal)
        #expect(data.samples["green"]?.count == 10_800)
        let started = ContinuousClock.now
        let html = renderReport(data)
        let elapsed = ContinuousClock.now - started
        let timeline = try #require(chart(html, "timeline"))
        for name in ["weight:blue", "rps:blue", "rps:green", "5xx:green"] {
            let d = try #require(seriesPath(timeline, name))
            #expect(pathVertexCount(d) <= maxPointsPerSeries, "\(name) has \(pathVertexCount(d)) points")
        }
        #expect(html.utf8.count < 600_000, "report is \(html.utf8.count) bytes")
        #expect(elapsed < .seconds(5), "rendering took \(elapsed)")
        // The one-second spike survives the bucketing: the 5xx axis is scaled to it.
        // (green gets about 100 req/s at 50%, 90% of them 5xx for one second.)
        #expect(timeline.contains("data-panel=\"5xx\" data-max=\"100\""), "the 5xx spike was lost")
    }

    @Test func downsampleKeepsExtremesAndTheBound() {
        var points = (0..<50_000).map { Point(t: Double($0), v: Double($0 % 7)) }
        points[31_337].v = 1_000
        points[12_345].v = -5
        let thinned = downsample(points, limit: 1_000)
        #expect(thinned.count <= 1_000)
        #expect(thinned.contains(points[31_337]))
        #expect(thinned.contains(points[12_345]))
        #expect(thinned.map(\.t) == thinned.map(\.t).sorted(), "points stay in time order")
        #expect(downsample(Array(points.prefix(500)), limit: 1_000).count == 500, "short series are left alone")
    }

    @Test func loadPicksTheRunAskedFor() throws {
        let journal = MemoryJournal()
        let first = try RecordedRun.rolledBack(journal)
        let second = try RecordedRun.healthy(journal)
        #expect(try ReportData.load(from: journal).run.id == second.run)
        let older = try ReportData.load(from: journal, run: first.run)
        #expect(older.run.id == first.run)
        #expect(older.events.allSatisfy { $0.run == first.run })
        #expect(throws: ReportError.self) { try ReportData.load(from: journal, run: 99) }
        #expect(throws: ReportError.self) { try ReportData.load(from: MemoryJournal()) }
    }

    @Test func sqliteJournalOpenedReadOnlyGivesTheSameReport() throws {
        let folder = try TemporaryDirectory.make("report-sqlite")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("state.db").path
        do {
            let journal = try SQLiteJournal(path: path)
            _ = try RecordedRun.healthy(journal)
        }
        let reader = try SQLiteJournal(readOnlyPath: path)
        let fromSQLite = renderReport(try ReportData.load(from: reader, policy: demoPolicy))
        let memory = MemoryJournal()
        _ = try RecordedRun.healthy(memory)
        let fromMemory = renderReport(try ReportData.load(from: memory, policy: demoPolicy))
        #expect(fromSQLite == fromMemory)
        #expect(throws: (any Error).self) { try reader.append(JournalEvent(run: 1, at: .seconds(1), kind: "x", detail: "")) }
        #expect(throws: StoreError.self) { try SQLiteJournal(readOnlyPath: folder.appendingPathComponent("none.db").path) }
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("none.db").path))
    }
}

@Suite struct RateWindowAndSentenceTests {
    /// 300 req/s sampled every 250 ms with the jitter a real run has: counters read 75 ± 8
    /// requests apart.
    private func jittered(count: Int, perSample: (Int) -> Int64) -> [ClusterSample] {
        var total: Int64 = 0
        return (0..<count).map { index in
            total += perSample(index)
            return ClusterSample(at: Instant(millisecondsSinceEpoch: Int64(index) * 250), counters: ClusterCounters(responses: total))
        }
    }

    @Test func oneSecondWindowFlattensTheZigzagOfQuarterSecondSamples() {
        let samples = jittered(count: 40) { $0 % 2 == 0 ? 83 : 67 }
        let neighbours = rates(samples, start: .seconds(0), window: 0) { $0.responses }.joined().map(\.v)
        let windowed = rates(samples, start: .seconds(0)) { $0.responses }.joined().filter { $0.t >= 1 }.map(\.v)
        // Between neighbours: 268 / 332 req/s; over 1 s: 300 exactly.
        #expect(neighbours.max()! - neighbours.min()! > 60)
        #expect(windowed.allSatisfy { abs($0 - 300) < 1 }, "\(windowed)")
    }

    @Test func aSharpDropStillShowsWithinOneWindow() {
        // 300 req/s, then nothing from 5 s on (the rollback took the cluster out).
        let samples = jittered(count: 40) { $0 <= 20 ? 75 : 0 }
        let points = rates(samples, start: .seconds(0)) { $0.responses }.joined()
        #expect(points.first { $0.t == 5 }?.v == 300)
        #expect(points.first { $0.t == 6 }?.v == 0)
        // In between it ramps down rather than jumping, and nothing is lost: the 1 s window
        // right after the drop still counts the last quarter's requests.
        #expect(points.first { $0.t == 5.5 }.map { $0.v > 0 && $0.v < 300 } == true)
    }

    @Test func windowsNeverReachAcrossACounterReset() {
        var samples = jittered(count: 8) { _ in 75 }
        samples += (0..<8).map { index in
            ClusterSample(at: Instant(millisecondsSinceEpoch: 2000 + Int64(index) * 250), counters: ClusterCounters(responses: 10 + Int64(index) * 50))
        }
        let segments = rates(samples, start: .seconds(0)) { $0.responses }
        #expect(segments.count == 2)
        #expect(segments.joined().allSatisfy { $0.v >= 0 && $0.v <= 300 }, "\(segments)")
        #expect(segments[1].allSatisfy { $0.v == 200 }, "\(segments[1])")
    }

    @Test func aResumeWithoutAPauseIsNotMarked() throws {
        let journal = MemoryJournal()
        _ = try RecordedRun.healthy(journal)
        var data = try ReportData.load(from: journal)
        let last = try #require(data.events.last)
        // A coordinator restarted after the run drained journals a `resumed` with no pause before it.
        data.events.append(JournalEvent(sequence: last.sequence + 1, run: data.run.id, at: last.at + .seconds(1), kind: "resumed",
                                        detail: try JournalJSON.encode(EngineEvent(.resumed, "resumed while draining", phase: .drained))))
        let timeline = try #require(chart(renderReport(data), "timeline"))
        // The recorded run's one real pause/resume is still marked; the lone resume is not.
        #expect(count("data-marker=\"resume\"", in: timeline) == 1)
    }

    @Test func eventTimesKeepMilliseconds() {
        #expect(preciseClock(11.37) == "0:11.370")
        #expect(preciseClock(0.0071) == "0:00.007")
        #expect(preciseClock(125.5) == "2:05.500")
        #expect(preciseClock(3700) == "1:01:40")
    }

    private let run = RunRecord(id: 1, from: "blue", to: "green", policy: "demo", startedAt: .seconds(0), pid: 1)

    @Test func runtimeNotesIntentsAndResultsReadAsSentences() {
        let intent = JournalEvent(sequence: 7, run: 1, at: .seconds(1), kind: "intent",
                                  detail: #"{"action":"setWeights","detail":{"setWeights":{"intent":3,"percentToTarget":25,"purpose":"step","step":2}}}"#,
                                  intentID: 7)
        let result = JournalEvent(sequence: 8, run: 1, at: .seconds(1), kind: "result",
                                  detail: #"{"percentToTarget":25,"servers":{"blue-1":192,"blue-2":192,"green-1":64,"green-2":64}}"#,
                                  intentID: 7, ok: true)
        let rollback = JournalEvent(sequence: 9, run: 1, at: .seconds(2), kind: "intent",
                                    detail: #"{"action":"setWeights","detail":{"setWeights":{"intent":4,"percentToTarget":0,"purpose":"rollback","step":0}}}"#,
                                    intentID: 9)
        let failed = JournalEvent(sequence: 10, run: 1, at: .seconds(2), kind: "result",
                                  detail: #"{"error":"socket closed","servers":{}}"#, intentID: 9, ok: false)
        let intents = [Int64(7): intent, 9: rollback]
        #expect(eventSentence(intent, run: run, intents: intents) == "set 25% to green for step 2 (intent 3)")
        #expect(eventSentence(result, run: run, intents: intents)
            == "read back: blue-1=192 · blue-2=192 · green-1=64 · green-2=64 → 25.0% to green (intent 3)")
        #expect(eventSentence(rollback, run: run, intents: intents) == "set 0% to green: rollback (intent 4)")
        #expect(eventSentence(failed, run: run, intents: intents) == "failed: socket closed (intent 4)")
        let note = JournalEvent(run: 1, at: .seconds(0), kind: "coordinatorStarted", detail: #"{"message":"coordinator pid 9 started run 1"}"#)
        #expect(eventSentence(note, run: run, intents: [:]) == "coordinator pid 9 started run 1")
        let simple = JournalEvent(sequence: 11, run: 1, at: .seconds(3), kind: "intent", detail: #"{"action":"setDrain","detail":{"cluster":"blue"}}"#)
        #expect(eventSentence(simple, run: run, intents: [:]) == "setDrain blue")
        let done = JournalEvent(run: 1, at: .seconds(3), kind: "result", detail: "{}", intentID: 11, ok: true)
        #expect(eventSentence(done, run: run, intents: [11: simple]) == "done")
        let unknown = JournalEvent(run: 1, at: .seconds(4), kind: "somethingNew",
                                   detail: #"{"b":{"c":2,"d":true},"a":"x <y>","e":[1,2]}"#)
        #expect(eventSentence(unknown, run: run, intents: [:]) == "a: x <y> · b.c: 2 · b.d: true · e: 1, 2")
        // Text that is not JSON is left to the caller (shown as written).
        #expect(eventSentence(JournalEvent(run: 1, at: .seconds(5), kind: "sampleFailed", detail: "timeout"), run: run, intents: [:]) == nil)
    }

    @Test func sentencesAreEscapedInThePage() throws {
        let journal = MemoryJournal()
        _ = try RecordedRun.healthy(journal)
        var data = try ReportData.load(from: journal)
        data.events.append(JournalEvent(sequence: 99_999, run: data.run.id, at: data.run.startedAt, kind: "note",
                                        detail: #"{"message":"<script>alert(1)</script>"}"#))
        let html = renderReport(data)
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(!html.contains("<script>alert"))
        // The simulated run's weight changes read as the runtime writes them.
        #expect(html.contains("set 10% to green for step 1 (intent 1)"))
        #expect(!html.contains("{&quot;"), "a row still shows JSON: \(html.components(separatedBy: "{&quot;").dropFirst().map { $0.prefix(200) })")
    }
}
