import Foundation
import SwitchoverCore
import SwitchoverReport
import SwitchoverStore
import SwitchoverTestKit
import Testing

/// Headless Chromium (Debian's `chromium`, installed by scripts/setup) run once per call, with
/// its own profile folder, killed by PID if it takes more than `timeout`.
struct HeadlessChromium {
    let executable: String
    let folder: URL

    init(folder: URL) throws {
        executable = try Tools.require("chromium")
        self.folder = folder
    }

    /// Runs Chromium with `arguments` on `url`; returns its stdout (through a file) and its log.
    func run(_ arguments: [String], url: URL, name: String, timeout: TimeInterval = 60) async throws -> (stdout: String, log: String) {
        let profile = folder.appendingPathComponent("profile-\(name)")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        let out = folder.appendingPathComponent("\(name).out")
        let log = folder.appendingPathComponent("\(name).log")
        // stdout (the dumped DOM) and the log go to separate files: a shell keeps them apart.
        let command = ([executable, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-extensions", "--disable-background-networking", "--disable-sync",
                        "--user-data-dir=\(profile.path)", "--enable-logging=stderr", "--v=0"] + arguments + [url.absoluteString])
            .map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let process = try ManagedProcess(name: "chromium-\(name)", executable: "/bin/sh",
                                         arguments: ["-c", "exec \(command) > '\(out.path)'"], logFile: log)
        defer { process.stopInBackground() }
        guard await process.waitForExit(timeout: timeout) else {
            throw TestKitError("chromium did not finish within \(Int(timeout)) s; log:\n\(process.logTail())")
        }
        let stdout = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        return (stdout, process.logTail(lines: 400))
    }
}

/// Width and height from a PNG's IHDR chunk.
func pngSize(_ data: Data) -> (width: Int, height: Int)? {
    let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    guard data.count > 24, Array(data.prefix(8)) == signature else { return nil }
    let bytes = [UInt8](data[16..<24])
    let width = bytes[0..<4].reduce(0) { $0 << 8 | Int($1) }
    let height = bytes[4..<8].reduce(0) { $0 << 8 | Int($1) }
    return (width, height)
}

/// Console messages (`INFO:CONSOLE` lines: the report has no script, so any is a fault, an
/// uncaught exception included) and failed loads in Chromium's log. Chromium's own noise
/// (D-Bus, GPU, sandbox warnings) is not about the page and is ignored.
func pageErrors(_ log: String) -> [String] {
    log.split(separator: "\n").map(String.init).filter { line in
        line.contains(":CONSOLE") || line.contains("Uncaught") || line.contains("net::ERR_")
            || line.contains("Failed to load resource")
    }
}

/// One Chromium at a time from this suite (`.serialized`): each takes most of a core for seconds,
/// and two side by side on 2 cores only make both slower while the other suites run.
@Suite(.serialized) struct ReportChromiumTests {
    @Test func recordedRunRendersInHeadlessChromium() async throws {
        let folder = try TemporaryDirectory.make("report-chromium")
        defer { try? FileManager.default.removeItem(at: folder) }
        let journal = MemoryJournal()
        _ = try RecordedRun.healthy(journal)
        let html = renderReport(try ReportData.load(from: journal, policy: demoPolicy))
        let page = folder.appendingPathComponent("report.html")
        try Data(html.utf8).write(to: page)
        let chromium = try HeadlessChromium(folder: folder)

        // The DOM after load: what the browser parsed, not what we wrote.
        let dom = try await chromium.run(["--dump-dom"], url: page, name: "dom")
        #expect(pageErrors(dom.log).isEmpty, "page errors:\n\(pageErrors(dom.log).joined(separator: "\n"))")
        let timeline = try #require(chart(dom.stdout, "timeline"), "no timeline chart in the DOM; log:\n\(dom.log)")
        #expect(count("data-series=", in: timeline) == 6)
        #expect(count("<circle data-verdict=", in: timeline) == 32)
        let drain = try #require(chart(dom.stdout, "drain"))
        #expect(count("data-series=", in: drain) == 1)
        #expect(dom.stdout.contains("data-outcome=\"drained\""))
        #expect(dom.stdout.contains("<title>Switchover report: blue → green (run 1)</title>"))
        // The three tables survived parsing as tables (an unescaped string would have broken them).
        #expect(count("<table", in: dom.stdout) == 3)

        // The screenshot: a real image of the page at the size the README shows.
        let png = folder.appendingPathComponent("report.png")
        let shot = try await chromium.run(["--screenshot=\(png.path)", "--window-size=1200,1800", "--hide-scrollbars"],
                                    url: page, name: "shot")
        #expect(pageErrors(shot.log).isEmpty, "page errors:\n\(pageErrors(shot.log).joined(separator: "\n"))")
        let image = try Data(contentsOf: png)
        let size = try #require(pngSize(image), "not a PNG; log:\n\(shot.log)")
        #expect(size.width == 1200 && size.height == 1800)
        // A blank page compresses to a few kilobytes; charts, text and colour do not.
        #expect(image.count > 60_000, "screenshot is only \(image.count) bytes")
        keepScreenshot(png, page: page, suffix: "")
    }

    /// The error check above can fail: a page with a script error is caught.
    @Test func pageErrorCheckCatchesAScriptError() async throws {
        let folder = try TemporaryDirectory.make("report-chromium")
        defer { try? FileManager.default.removeItem(at: folder) }
        let page = folder.appendingPathComponent("bad.html")
        try Data("<html><body><p>x</p><script>console.error('boom'); notDefined();</script></body></html>".utf8).write(to: page)
        let result = try await HeadlessChromium(folder: folder).run(["--dump-dom"], url: page, name: "bad")
        let errors = pageErrors(result.log)
        #expect(errors.contains { $0.contains("boom") }, "log:\n\(result.log)")
        #expect(errors.contains { $0.contains("Uncaught ReferenceError") }, "log:\n\(result.log)")
    }

    @Test func rolledBackRunShowsTheFailingGateInChromium() async throws {
        let folder = try TemporaryDirectory.make("report-chromium")
        defer { try? FileManager.default.removeItem(at: folder) }
        let journal = MemoryJournal()
        _ = try RecordedRun.rolledBack(journal)
        let page = folder.appendingPathComponent("report.html")
        try Data(renderReport(try ReportData.load(from: journal, policy: demoPolicy)).utf8).write(to: page)
        let chromium = try HeadlessChromium(folder: folder)
        let dom = try await chromium.run(["--dump-dom"], url: page, name: "dom")
        #expect(pageErrors(dom.log).isEmpty, "page errors:\n\(pageErrors(dom.log).joined(separator: "\n"))")
        let timeline = try #require(chart(dom.stdout, "timeline"), "no timeline chart in the DOM; log:\n\(dom.log)")
        #expect(count("data-series=", in: timeline) == 6)
        #expect(count("data-verdict=\"fail\"", in: timeline) == 2)
        #expect(timeline.contains("data-marker=\"rollback\""))
        #expect(chart(dom.stdout, "drain") == nil)
        #expect(dom.stdout.contains("data-outcome=\"rolledBack\""))
        let png = folder.appendingPathComponent("report.png")
        _ = try await chromium.run(["--screenshot=\(png.path)", "--window-size=1200,1200", "--hide-scrollbars"], url: page, name: "shot")
        #expect(pngSize(try Data(contentsOf: png))?.height == 1200)
        keepScreenshot(png, page: page, suffix: "-rolledback")
    }

    /// With `SWITCHOVER_REPORT_SCREENSHOT=/path/x.png`, keeps the screenshot and its page (for
    /// looking at them; docs/report.png is a screenshot of a real `scripts/demo` run instead).
    private func keepScreenshot(_ png: URL, page: URL, suffix: String) {
        guard let keep = ProcessInfo.processInfo.environment["SWITCHOVER_REPORT_SCREENSHOT"] else { return }
        let target = keep.replacingOccurrences(of: ".png", with: "\(suffix).png")
        try? FileManager.default.removeItem(atPath: target)
        try? FileManager.default.copyItem(at: png, to: URL(fileURLWithPath: target))
        try? FileManager.default.removeItem(atPath: target + ".html")
        try? FileManager.default.copyItem(at: page, to: URL(fileURLWithPath: target + ".html"))
    }
}

@Suite struct ReportCLITests {
    @Test func reportCommandWritesTheNewestRun() async throws {
        let folder = try TemporaryDirectory.make("report-cli")
        defer { try? FileManager.default.removeItem(at: folder) }
        let state = folder.appendingPathComponent("state.db").path
        do {
            let journal = try SQLiteJournal(path: state)
            _ = try RecordedRun.rolledBack(journal)
            _ = try RecordedRun.healthy(journal)
        }
        let out = folder.appendingPathComponent("r.html")
        let result = try await runSwitchover(["report", "--state", state, "--out", out.path], cwd: folder)
        #expect(result.exitCode == 0, "\(result.stderr)")
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == out.path)
        let html = try String(contentsOf: out, encoding: .utf8)
        #expect(html.contains("data-outcome=\"drained\""))

        let older = try await runSwitchover(["report", "--state", state, "--run", "1"], cwd: folder)
        #expect(older.exitCode == 0, "\(older.stderr)")
        let defaultOut = folder.appendingPathComponent("switchover-report.html")
        #expect(try String(contentsOf: defaultOut, encoding: .utf8).contains("data-outcome=\"rolledBack\""))

        let noRun = try await runSwitchover(["report", "--state", state, "--run", "7"], cwd: folder)
        #expect(noRun.exitCode == 2)
        #expect(noRun.stderr.contains("no run 7"))
    }

    @Test func missingJournalIsAClearErrorAndCreatesNothing() async throws {
        let folder = try TemporaryDirectory.make("report-cli")
        defer { try? FileManager.default.removeItem(at: folder) }
        let state = folder.appendingPathComponent("nothing/state.db").path
        let result = try await runSwitchover(["report", "--state", state], cwd: folder)
        #expect(result.exitCode == 2)
        #expect(result.stderr.contains("no journal at \(state)"))
        #expect(!FileManager.default.fileExists(atPath: state))
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("switchover-report.html").path))
    }
}
