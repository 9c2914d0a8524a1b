import ArgumentParser

/// The `switchover` command line: thin; every command loads configuration through
/// SwitchoverCore and does its work in the library modules.
@main
struct Switchover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchover",
        abstract: "Moves live traffic from a blue cluster (old Istio) to a green one (new Istio), step by step.",
        discussion: """
            Exit codes: 0 success; 1 the verdict was no (not trusted, rolled back, refused, timed out); \
            2 bad input or a failed preflight.
            """,
        subcommands: [
            Validate.self, Plan.self, Trust.self, Run.self, Status.self,
            Pause.self, Resume.self, Promote.self, Abort.self, Rollback.self,
            Drain.self, Decommission.self, Report.self,
        ]
    )
}
