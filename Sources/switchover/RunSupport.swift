import ArgumentParser
import Foundation
import Logging
import SwitchoverCore
import SwitchoverRuntime

// What `run`, `drain`, `status` and the control commands share: logging, the runtime's context
// from the global options, and printing what the runtime reports.

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

/// A live line on a terminal, one log line per event in a pipe.
func makeReporter(logger: Logger) -> any Reporter {
    isatty(STDERR_FILENO) == 1 ? TerminalReporter() : LogReporter(logger: logger)
}

extension GlobalOptions {
    /// What the runtime needs from the command line: `--state`, the configuration as loaded
    /// (with its files' problems), and the logger.
    func context() throws -> RuntimeContext {
        let (configuration, problems) = loadConfiguration()
        return RuntimeContext(state: try stateLocation(), configuration: configuration, problems: problems,
                              logger: bootstrapLogging())
    }

    /// Runs `body`; a configuration that does not allow the command prints every problem and
    /// exits 2 (`refuse`).
    func refusingBadConfiguration<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let refused as ConfigurationRefused {
            try refuse(refused.diagnostics)
        }
    }
}

/// Prints what `run` or `drain` came to and exits with its code: notes and refusals on stderr,
/// the verdict on stdout; with `--output json`, one object on stdout.
func printRunReport(_ report: RunReport, command: String, global: GlobalOptions) throws {
    for note in report.notes { printError("switchover \(command): \(note)\n") }
    switch global.output {
    case .text:
        if !report.failures.isEmpty {
            printError("switchover \(command): \(report.message):\n" + report.failures.map { "  - \($0)\n" }.joined())
        } else if report.isVerdict {
            print(report.message)
        } else {
            printError("switchover \(command): \(report.message)\n")
        }
    case .json:
        var object: [String: Any] = ["outcome": report.outcome, "message": report.message]
        if !report.failures.isEmpty { object["failures"] = report.failures }
        if let run = report.runID { object["run"] = run }
        if let state = report.state {
            object["phase"] = state.phase.rawValue
            object["step"] = state.step
            object["percentToTarget"] = JSONNumber.of(state.percentToTarget)
        }
        if let drain = report.drain { object["drain"] = drain.json }
        printJSON(object)
    }
    if report.exitCode != 0 { throw ExitCode(report.exitCode) }
}
