import Foundation
@testable import SwitchoverBench
import SwitchoverTestKit
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The pieces `bench/run` measures with: order statistics, hey's report (against a real nginx),
/// and a process's `/proc` figures.
@Suite
struct MeasurementTests {
    @Test func medianAndSpreadOfOddAndEvenTrials() {
        let odd = Stats([5, 1, 3])
        #expect(odd.median == 3 && odd.min == 1 && odd.max == 5)
        let even = Stats([4, 1, 3, 2])
        #expect(even.median == 2.5)
        let many = Stats((1...11).map(Double.init))
        #expect(many.percentile(0.1) == 2 && many.percentile(0.9) == 10)
        let row = many.row("x", unit: "ms", reference: 4, referenceLabel: "4 ms", note: "", percentiles: true)
        #expect(row.ratio == 1.5 && row.low == 2 && row.high == 10 && row.spread == "p10–p90")
        #expect(Stats([0, 0]).row("x", unit: "requests", reference: 0, referenceLabel: "0", note: "").ratio == nil)
    }

    @Test func heyReportCountsNon2xxAnswersAsFailed() async throws {
        let folder = try TemporaryDirectory.make("bench-tests")
        defer { try? FileManager.default.removeItem(at: folder) }
        let backend = try await NginxBackend.start(name: "green-1", in: folder)
        defer { backend.stopInBackground() }
        try backend.fail(true)
        let hey = try ManagedProcess(name: "hey", executable: try Tools.require("hey"),
                                     arguments: ["-n", "40", "-c", "4", "http://\(backend.address)/"],
                                     logFile: folder.appendingPathComponent("hey.log"))
        #expect(await hey.waitForExit(timeout: 30))
        let report = try await HeyReport.finish(hey)
        #expect(report.statusCounts == [503: 40])
        #expect(report.failed == 40 && report.ok == 0 && report.errors == 0)
        #expect(report.requestsPerSecond > 0)
    }

    @Test func heyReportCountsTransportErrorsAsFailed() async throws {
        let folder = try TemporaryDirectory.make("bench-tests")
        defer { try? FileManager.default.removeItem(at: folder) }
        let closed = try Loopback.freePort() // nothing listens: every request is refused
        let hey = try ManagedProcess(name: "hey", executable: try Tools.require("hey"),
                                     arguments: ["-n", "10", "-c", "2", "http://127.0.0.1:\(closed)/"],
                                     logFile: folder.appendingPathComponent("hey.log"))
        #expect(await hey.waitForExit(timeout: 30))
        let report = try await HeyReport.finish(hey)
        #expect(report.responses == 0)
        #expect(report.errors == 10 && report.failed == 10)
    }

    @Test func procReadingOfALiveProcessAndOfNone() throws {
        var sink = 0.0
        for i in 0..<3_000_000 { sink += sqrt(Double(i)) } // some CPU time to read back
        #expect(sink > 0)
        let own = try #require(ProcReading.read(getpid()))
        #expect(own.peakRSSKiB > 1_000)
        #expect(own.cpuSeconds > 0)
        #expect(ProcReading.read(Int32.max) == nil)
    }
}
