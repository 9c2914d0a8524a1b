import Foundation
import SwitchoverTestKit

/// One line of the benchmark table: a figure's median and spread over its trials, and its ratio
/// against the reference it is judged by. Every value was measured in the same run.
struct FigureRow: Codable {
    var figure: String
    var trials: Int
    var unit: String
    var median: Double
    var low: Double
    var high: Double
    /// "min–max" or "p10–p90".
    var spread: String
    var reference: Double
    var referenceLabel: String
    /// median / reference; nil when the reference is 0 (a count that must be zero).
    var ratio: Double?
    var note: String
}

/// The whole run, as written to `bench/out/latest.json`.
struct SuiteReport: Codable {
    var date: String
    var quick: Bool
    var cores: Int
    var memoryGiB: Double
    var loadAverageAtStart: String
    var loadAverageAtEnd: String
    var seconds: Double
    var rows: [FigureRow]
}

/// Order statistics of a figure's trials.
struct Stats {
    let sorted: [Double]
    init(_ values: [Double]) {
        precondition(!values.isEmpty, "a figure needs at least one trial")
        sorted = values.sorted()
    }
    var count: Int { sorted.count }
    var min: Double { sorted.first! }
    var max: Double { sorted.last! }
    var median: Double {
        sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
    /// Nearest-rank percentile (p in 0...1).
    func percentile(_ p: Double) -> Double { sorted[Swift.min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))] }

    /// A row with min–max as the spread (few trials) or p10–p90 (many).
    func row(_ figure: String, unit: String, reference: Double, referenceLabel: String, note: String,
             percentiles: Bool = false) -> FigureRow {
        FigureRow(figure: figure, trials: count, unit: unit, median: median,
                  low: percentiles ? percentile(0.1) : min, high: percentiles ? percentile(0.9) : max,
                  spread: percentiles ? "p10–p90" : "min–max", reference: reference, referenceLabel: referenceLabel,
                  ratio: reference == 0 ? nil : median / reference, note: note)
    }
}

/// `SwitchoverBench suite [--quick] --switchover PATH [--json PATH]`: every figure of the
/// benchmark table (issue 8), each against real servers on 127.0.0.1, measured from outside the
/// coordinator. `bench/run` builds in release and calls this.
enum Suite {
    static func run(_ arguments: [String]) async throws {
        var quick = false
        var switchover: String?
        var jsonPath: String?
        var only: Set<String>?
        var index = 0
        while index < arguments.count {
            switch arguments[index] {
            case "--quick": quick = true; index += 1
            case "--switchover": switchover = arguments[index + 1]; index += 2
            case "--json": jsonPath = arguments[index + 1]; index += 2
            case "--only": only = Set(arguments[index + 1].split(separator: ",").map(String.init)); index += 2
            default: throw TestKitError("unknown argument \(arguments[index])")
            }
        }
        guard let switchover, FileManager.default.isExecutableFile(atPath: switchover) else {
            throw TestKitError("--switchover PATH (the release switchover binary) is required")
        }
        for tool in ["haproxy", "nginx", "hey", "socat", "sqlite3", "openssl"] { _ = try Tools.require(tool) }

        let started = ContinuousClock.now
        let loadAtStart = loadAverage()
        progress("load average at start: \(loadAtStart)")
        var rows: [FigureRow] = []
        func wanted(_ name: String) -> Bool { only?.contains(name) ?? true }

        if wanted("rollback") { rows += try RollbackFigure.measure(trials: quick ? 10 : 12, switchover: switchover) }
        if wanted("cutover") { rows += try CutoverFigure.measure(trials: quick ? 1 : 3, switchover: switchover, quick: quick) }
        if wanted("split") { rows += try SplitFigure.measure(switchover: switchover, quick: quick) }
        if wanted("fleet") { rows += try await fleetRows(trials: quick ? 5 : 10) }
        if wanted("instances") { rows += try await InstancesFigure.measure(trials: quick ? 5 : 10, switchover: switchover, quick: quick) }
        if wanted("trust") { rows += try await trustRows(iterations: quick ? 500 : 2_000) }
        if wanted("resume") { rows += try ResumeFigure.measure(trials: quick ? 5 : 10, switchover: switchover) }
        if wanted("commands") { rows += try CommandsFigure.measure(runs: 20, switchover: switchover) }
        if wanted("route53") { rows += try await Route53Figure.measure(trials: 20) }
        if wanted("surface") { rows += try OperatorSurfaceFigure.measure(trials: quick ? 2 : 3, switchover: switchover) }
        let highAvailability = HAFigure.names.filter(wanted)
        if !highAvailability.isEmpty { rows += try await HAFigure.measure(highAvailability, quick: quick, switchover: switchover) }

        let report = SuiteReport(date: ISO8601DateFormatter().string(from: Date()), quick: quick,
                                 cores: ProcessInfo.processInfo.activeProcessorCount,
                                 memoryGiB: Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824,
                                 loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadAverage(),
                                 seconds: seconds(since: started), rows: rows)
        print(markdown(report))
        if let jsonPath {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(report).write(to: URL(fileURLWithPath: jsonPath))
        }
    }

    static func fleetRows(trials: Int) async throws -> [FigureRow] {
        progress("weight apply on a fleet: 1,000 and 10,000 HAProxy servers, \(trials) trials each")
        let results = try await FleetBenchmark.measure(sizes: [1_000, 10_000], trials: trials)
        var rows: [FigureRow] = []
        for size in [1_000, 10_000] {
            guard let apply = results.first(where: { $0.size == size && $0.kind == .driverApply }),
                  let socat = results.first(where: { $0.size == size && $0.kind == .socat }),
                  let raw = results.first(where: { $0.size == size && $0.kind == .rawApply }) else { continue }
            let reference = Stats(socat.samples)
            rows.append(Stats(apply.samples).row(
                "weight apply, \(grouped(size)) servers (read, write, read back)", unit: "ms",
                reference: reference.median,
                referenceLabel: String(format: "socat, the same %d write lines: %.1f ms (%.1f–%.1f)", apply.roundTrips,
                                       reference.median, reference.min, reference.max),
                note: "through the HAProxy driver: read, then \(apply.roundTrips) write lines, then read back; "
                    + String(format: "the write lines alone over a raw socket: %.1f ms", Stats(raw.samples).median)))
        }
        return rows
    }

    static func trustRows(iterations: Int) async throws -> [FigureRow] {
        progress("trust verification: \(iterations) verifications per scenario")
        let results = try await TrustBenchmark.measure(iterations: iterations)
        guard let shared = results.first else { return [] }
        return [Stats(shared.samples).row(
            "trust verification (CPU per verification, two clusters)", unit: "ms", reference: 10,
            referenceLabel: "10 ms", note: "\(shared.name); batches of 10; \(shared.verdict)", percentiles: true)]
    }

    static func markdown(_ report: SuiteReport) -> String {
        // One precision per row, chosen by its median, so a spread reads like its median.
        func number(_ value: Double, _ row: FigureRow) -> String {
            switch row.unit {
            case "requests": return String(format: "%.0f", value)
            case "MiB", "pp": return String(format: "%.2f", value)
            case "m": return String(format: "%.1f", value)
            default: return row.median >= 100 ? String(format: "%.0f", value) : String(format: "%.2f", value)
            }
        }
        var lines = [
            "| figure | trials | median | spread | reference | ratio (median / reference) | how |",
            "|---|---:|---:|---|---|---:|---|",
        ]
        for row in report.rows {
            let ratio = row.ratio.map { String(format: "%.3g×", $0) } ?? (row.median == 0 && row.high == 0 ? "met (0)" : "not met")
            lines.append("| \(row.figure) | \(row.trials) | \(number(row.median, row)) \(row.unit) | "
                         + "\(number(row.low, row))–\(number(row.high, row)) (\(row.spread)) | \(row.referenceLabel) | \(ratio) | \(row.note) |")
        }
        lines.append("")
        lines.append("\(report.quick ? "Quick" : "Full") run, \(report.cores) cores, load average at start "
                     + "\(report.loadAverageAtStart) and at end \(report.loadAverageAtEnd), "
                     + String(format: "%.0f s in all.", report.seconds))
        return lines.joined(separator: "\n")
    }

    static func loadAverage() -> String {
        let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?"
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }
}

/// Progress goes to stderr, so stdout is the table alone.
func progress(_ message: String) {
    FileHandle.standardError.write(Data("bench: \(message)\n".utf8))
}
