import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Load generators for tests: `hey` against a load balancer's frontend.
public enum Load {
    /// What `hey` reported.
    public struct Result: Sendable {
        /// Responses by HTTP status (`[200]` lines of hey's status code distribution).
        public var statusCounts: [Int: Int]
        public var output: String
        public var responses: Int { statusCounts.values.reduce(0, +) }
    }

    /// Runs `hey -n requests -c concurrency url` to the end and returns its status counts.
    /// Throws when hey is missing or fails. hey runs for seconds and its output is read to the
    /// end of a pipe, so both waits happen on a thread of their own.
    @discardableResult
    public static func hey(_ url: String, requests: Int, concurrency: Int = 20) async throws -> Result {
        try await OwnThread.run("hey") { try heyBlocking(url, requests: requests, concurrency: concurrency) }
    }

    /// `hey` on the calling thread, which it blocks until hey ends (the benchmark's figures).
    @available(*, noasync, message: "blocks its thread: `try await Load.hey(...)`")
    @discardableResult
    public static func hey(_ url: String, requests: Int, concurrency: Int = 20) throws -> Result {
        try heyBlocking(url, requests: requests, concurrency: concurrency)
    }

    private static func heyBlocking(_ url: String, requests: Int, concurrency: Int) throws -> Result {
        let hey = try Tools.require("hey")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: hey)
        process.arguments = ["-n", String(requests), "-c", String(concurrency), url]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let output = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw TestKitError("hey exited \(process.terminationStatus):\n\(output)")
        }
        return Result(statusCounts: HeyReport(output: output).statusCounts, output: output)
    }

    /// `hey -z SECONDSs -q RATE -c WORKERS url` in the background (RATE × WORKERS requests per
    /// second, keep-alive connections as every real client keeps them), its report written to
    /// `logFile`. It stops by itself after `seconds`; `HeyReport.finish` stops it earlier and
    /// reads the report.
    public static func startHey(_ url: String, seconds: Int, rate: Int, workers: Int, logFile: URL) throws -> ManagedProcess {
        try ManagedProcess(name: "hey", executable: try Tools.require("hey"),
                           arguments: ["-z", "\(seconds)s", "-q", "\(rate)", "-c", "\(workers)", url],
                           logFile: logFile)
    }
}

/// What `hey` reported at the end of a run: responses by status and transport errors. The one
/// reader of hey's summary for the tests, the benchmarks and their "failed requests" figures.
public struct HeyReport: Sendable, Hashable {
    /// Responses by HTTP status (`[200]\t1000 responses` under "Status code distribution").
    public var statusCounts: [Int: Int] = [:]
    /// Requests that got no response at all (refused, reset, EOF, timeout): the counts under
    /// "Error distribution" (`[3]\tGet "...": EOF`).
    public var errors = 0
    /// hey's `Requests/sec:`.
    public var requestsPerSecond = 0.0

    public var responses: Int { statusCounts.values.reduce(0, +) }
    public var ok: Int { statusCounts.filter { (200..<300).contains($0.key) }.values.reduce(0, +) }
    /// Every request that did not get a 2xx: non-2xx answers and transport errors.
    public var failed: Int { responses - ok + errors }

    /// Parses hey's summary. Lines of its latency histogram (`0.001 [321] |■■`) do not start
    /// with `[`, so they are not mistaken for counts.
    public init(output: String) {
        var section = ""
        for raw in output.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("Requests/sec:") {
                requestsPerSecond = Double(line.dropFirst("Requests/sec:".count).trimmingCharacters(in: .whitespaces)) ?? 0
            } else if line.hasPrefix("Status code distribution") {
                section = "status"
            } else if line.hasPrefix("Error distribution") {
                section = "errors"
            } else if line.hasPrefix("["), let close = line.firstIndex(of: "]"),
                      let number = Int(line[line.index(after: line.startIndex)..<close]) {
                let rest = line[line.index(after: close)...].trimmingCharacters(in: .whitespaces)
                if section == "status", let count = Int(rest.split(separator: " ").first ?? "") {
                    statusCounts[number, default: 0] += count
                } else if section == "errors" {
                    errors += number
                }
            }
        }
    }

    /// Stops `hey` with SIGINT if it still runs (it stops its workers between requests and
    /// prints its report) and reads the report from its log file.
    public static func finish(_ hey: ManagedProcess) async throws -> HeyReport {
        if hey.isRunning {
            hey.signal(SIGINT)
            guard await hey.waitForExit(timeout: 30) else { throw TestKitError("hey did not stop on SIGINT") }
        }
        return try report(of: hey)
    }

    /// `finish` on the calling thread, which it blocks until hey has exited (the benchmark's figures).
    @available(*, noasync, message: "blocks its thread: `try await HeyReport.finish(...)`")
    public static func finish(_ hey: ManagedProcess) throws -> HeyReport {
        if hey.isRunning {
            hey.signal(SIGINT)
            guard hey.waitForExit(timeout: 30) else { throw TestKitError("hey did not stop on SIGINT") }
        }
        return try report(of: hey)
    }

    private static func report(of hey: ManagedProcess) throws -> HeyReport {
        let text = (try? String(contentsOf: hey.logFile, encoding: .utf8)) ?? ""
        guard text.contains("Summary:") else { throw TestKitError("hey printed no summary:\n\(text.suffix(2000))") }
        return HeyReport(output: text)
    }
}
