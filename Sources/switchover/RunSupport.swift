import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals
import SwitchoverCore
import SwitchoverRuntime
import SwitchoverStore
import SwitchoverTrust

// What `run`, `status` and the control commands share: logging, the journal, trust for preflight.

/// Logs go to stderr; `SWITCHOVER_LOG_LEVEL` (trace … critical) sets the level, `info` by
/// default. Bootstrapped once, by the executable only (libraries never bootstrap logging).
func bootstrapLogging() -> Logger {
    let level = ProcessInfo.processInfo.environment["SWITCHOVER_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    return Logger(label: "switchover")
}

/// The preflight's trust check: `verifyTrust` both ways, with a live handshake when both
/// clusters name a probe endpoint. Failed checks and unreadable material become sentences.
let preflightTrust: PreflightChecks.TrustCheck = { from, to, policy in
    let probe = from.trust.probe != nil && to.trust.probe != nil
    do {
        let report = try await verifyTrust(from: from, to: to, horizon: policy.trustHorizon, probe: probe, now: Date())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = (try? encoder.encode(report)).map { String(decoding: $0, as: UTF8.self) }
        return TrustVerdict(failures: report.checks.filter { $0.status == .fail }.map { "trust: \($0.name): \($0.detail)" },
                            reportJSON: json)
    } catch {
        return TrustVerdict(failures: ["trust: \(error)"], reportJSON: nil)
    }
}

extension GlobalOptions {
    /// The journal at `--state`, or nil when no file is there (nothing has run). Never creates one.
    func existingJournal() throws -> SQLiteJournal? {
        guard FileManager.default.fileExists(atPath: state) else { return nil }
        return try SQLiteJournal(path: state)
    }

    /// The latest run and its state, if any.
    func latestRun(in journal: any JournalStore) throws -> (RunRecord, CutoverState)? {
        guard let run = try journal.latestRun(), let snapshot = try journal.loadState(run: run.id) else { return nil }
        let state = try JSONDecoder().decode(CutoverState.self, from: Data(snapshot.json.utf8))
        return (run, state)
    }
}

func now() -> Instant { Coordinator.wallClock() }

/// A live line on a terminal, one log line per event in a pipe.
func makeReporter(logger: Logger) -> any Reporter {
    isatty(STDERR_FILENO) == 1 ? TerminalReporter() : LogReporter(logger: logger)
}

/// Runs the coordinator in a `ServiceGroup` that turns SIGTERM and SIGINT into a graceful stop,
/// the way `run` and `drain` both run it. Returns the error that stopped the group, or nil when
/// the coordinator ended on its own (its outcome is then on `service`).
func supervise(_ service: CoordinatorService, logger: Logger) async -> (any Error)? {
    let group = ServiceGroup(configuration: ServiceGroupConfiguration(
        services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger))
    do {
        try await group.run()
        return nil
    } catch {
        return error
    }
}
