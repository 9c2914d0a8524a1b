import Foundation
import Logging
import SwitchoverTestKit
import Synchronization

/// Collects every log record, so a test can prove what was NOT logged (secrets).
final class LogRecords: @unchecked Sendable {
    // @unchecked Sendable: `lines` is only touched under `lock`.
    private let lock = NSLock()
    private var lines: [String] = []

    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}

struct CapturingLogHandler: LogHandler {
    let records: LogRecords
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .trace

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        records.append("\(event.level) \(event.message) \(merged)")
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
}

func capturingLogger() -> (Logger, LogRecords) {
    let records = LogRecords()
    let logger = Logger(label: "test") { _ in CapturingLogHandler(records: records) }
    return (logger, records)
}

/// Seconds elapsed while running `body`, timed on the test kit's stopwatch thread: other suites
/// running in parallel may keep the cooperative pool busy, and a refused connection must be
/// timed, not the pool's queue.
func measure<T>(_ body: () async throws -> T) async rethrows -> (T, Duration) {
    try await Stopwatch.measure(body)
}

/// A count that concurrent tasks add to.
final class Counter: Sendable {
    private let value = Mutex(0)
    func increment() { value.withLock { $0 += 1 } }
    var current: Int { value.withLock { $0 } }
}
