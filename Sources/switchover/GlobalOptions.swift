import ArgumentParser

/// The options every command takes (DESIGN.md section 2, a contract).
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Folder of Cluster documents.")
    var clusters: String = "./clusters"

    @Option(name: .long, help: "Folder of Policy documents.")
    var policies: String = "./policies"

    @Option(name: .long, help: "The run's journal (SQLite).")
    var state: String = "./.switchover/state.db"

    @Option(name: .long, help: "text for people, json for scripts (one object on stdout).")
    var output: OutputFormat = .text
}

enum OutputFormat: String, ExpressibleByArgument, Sendable {
    case text
    case json
}

/// Exit codes scripts read (README "Exit codes").
enum Exit {
    /// Success: valid, trusted, promoted, drained, accepted.
    static let ok = ExitCode(0)
    /// The answer is no: not trusted, rolled back or aborted, refused, timed out.
    static let no = ExitCode(1)
    /// Bad input or a failed preflight: nothing was changed.
    static let inputError = ExitCode(2)
}
