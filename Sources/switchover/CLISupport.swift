import ArgumentParser
import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverRuntime
import SwitchoverStore

// Helpers every command shares: loading configuration from the global options, refusing with
// diagnostics, and printing JSON. Text for people goes to stdout, diagnostics to stderr; with
// `--output json` stdout carries exactly one JSON object (DESIGN.md section 2).

extension GlobalOptions {
    /// Loads both folders, with every driver of the registry; problems come back, nothing is
    /// printed.
    func loadConfiguration() -> (Configuration, [Diagnostic]) {
        ConfigLoader.load(clustersDirectory: clusters, policiesDirectory: policies,
                          drivers: DriverRegistry.standard.descriptions)
    }

    /// The configuration, FROM, TO and the policy, or a refusal (exit 2) that prints every
    /// problem: those of any file, and those of this pair (`validatePair`). Commands that change
    /// something call this first, so bad input changes nothing.
    func requirePair(from: String, to: String, policy: String) throws -> (Configuration, Cluster, Cluster, Policy) {
        let (configuration, problems) = loadConfiguration()
        let context = RuntimeContext(state: (try? stateLocation()) ?? StateLocation(state), configuration: configuration, problems: problems,
                                     logger: Logger(label: "switchover"))
        do {
            let (fromCluster, toCluster, chosen) = try context.pair(from: from, to: to, policy: policy)
            return (configuration, fromCluster, toCluster, chosen)
        } catch let refused as ConfigurationRefused {
            try refuse(refused.diagnostics)
        }
    }

    /// Prints `diagnostics` (text: one `FILE:LINE:COL: message` line each on stderr; json:
    /// `{"valid": false, "diagnostics": [...]}` on stdout) and exits 2.
    func refuse(_ diagnostics: [Diagnostic]) throws -> Never {
        switch output {
        case .text:
            printDiagnostics(diagnostics)
        case .json:
            printJSON(["valid": false, "diagnostics": diagnostics.map(\.jsonObject)])
        }
        throw Exit.inputError
    }
}

extension GlobalOptions {
    /// Runs a command's work. A journal at `--state` that cannot be opened, read or written (a
    /// directory or FIFO there, a read-only or full folder, a corrupt or truncated file, a state
    /// snapshot that does not decode) ends the command with exit 2, the contract's "bad input,
    /// nothing was changed", saying what is wrong: on stderr, or with `--output json` as one
    /// JSON object with `error` on stdout. Failures after the load balancer was touched never
    /// reach here: `run` and `drain` report a failed coordinator themselves (exit 1), and the
    /// offline `rollback` rolls back without the journal when it cannot write it.
    func guardingJournal(_ command: String, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as StoreError where error.code != .lockHeld {
            journalFailure(command, error.context)
        } catch let error as DecodingError {
            journalFailure(command, "a journaled state does not decode: \(error)")
        }
    }

    func journalFailure(_ command: String, _ why: String) -> Never {
        switch output {
        case .text:
            printError("switchover \(command): the journal at --state \(state) cannot be used: \(why); nothing was changed\n")
        case .json:
            printJSON(["outcome": "journalError", "error": why, "state": state, "command": command])
        }
        Switchover.exit(withError: Exit.inputError)
    }
}

/// One line per diagnostic on stderr, then a count (of every problem, those a `… and N more`
/// line stands for included).
func printDiagnostics(_ diagnostics: [Diagnostic]) {
    var text = diagnostics.map { "\($0)\n" }.joined()
    let files = Set(diagnostics.map(\.location.file)).count
    let problems = diagnostics.reduce(0) { $0 + ($1.omitted > 0 ? $1.omitted : 1) }
    text += "\(problems) problem\(problems == 1 ? "" : "s") in \(files) file\(files == 1 ? "" : "s")\n"
    printError(text)
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}

/// One JSON object on stdout, keys sorted so output is stable for diffs and tests.
func printJSON(_ object: [String: Any]) {
    do {
        let data = try JSONSerialization.data(withJSONObject: object,
                                              options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        FileHandle.standardOutput.write(data)
        FileHandle.standardOutput.write(Data("\n".utf8))
    } catch {
        printError("switchover: could not encode JSON output: \(error)\n")
    }
}

extension Diagnostic {
    var jsonObject: [String: Any] {
        var object: [String: Any] = ["file": location.file, "line": location.line, "column": location.column, "message": message]
        if omitted > 0 { object["omitted"] = omitted }
        return object
    }
}
