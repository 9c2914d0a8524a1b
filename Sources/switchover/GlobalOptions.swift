import ArgumentParser
import SwitchoverCore
import SwitchoverRuntime
import SwitchoverStore

/// The options every command takes (DESIGN.md section 2, a contract).
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Folder of Cluster documents.")
    var clusters: String = "./clusters"

    @Option(name: .long, help: "Folder of Policy documents.")
    var policies: String = "./policies"

    @Option(name: .long, help: ArgumentHelp(
        "The run's journal: a SQLite file, or etcd://HOST:PORT[,HOST:PORT...]/PREFIX (etcds:// for TLS).",
        discussion: "With etcd, the coordinator holds a leader lease there, and `run --standby` on another machine takes over when it ends."))
    var state: String = "./.switchover/state.db"

    @Option(name: .customLong("etcd-cacert"), help: ArgumentHelp("etcds://: the CA file etcd's certificates are checked against.", valueName: "file"))
    var etcdCACert: String?

    @Option(name: .customLong("etcd-cert"), help: ArgumentHelp("etcds://: the client certificate (PEM) etcd asks for.", valueName: "file"))
    var etcdCert: String?

    @Option(name: .customLong("etcd-key"), help: ArgumentHelp("etcds://: the client certificate's key (PEM).", valueName: "file"))
    var etcdKey: String?

    @Option(name: .customLong("lease-ttl"), help: ArgumentHelp(
        "etcd: how long the coordinator's leader lease lasts without renewal (whole seconds).",
        discussion: "Renewed every third of it; a standby takes over within about this long after the leader dies. Default 5s."))
    var leaseTTL: String = "5s"

    @Option(name: .long, help: "text for people, json for scripts (one object on stdout).")
    var output: OutputFormat = .text
}

extension GlobalOptions {
    func validate() throws {
        guard let ttl = parseDuration(leaseTTL), ttl >= .seconds(1), ttl.components.attoseconds == 0 else {
            throw ValidationError("--lease-ttl: '\(leaseTTL)' is not a whole number of seconds, at least 1s (etcd leases count in seconds)")
        }
    }

    /// `--state` with the etcd options; a malformed `etcd://` URL is refused (exit 2) saying
    /// what is wrong, before any server is asked.
    func stateLocation() throws -> StateLocation {
        try StateLocation(parsing: state, etcd: EtcdOptions(caFile: etcdCACert, certificateFile: etcdCert, keyFile: etcdKey,
                                                            leaseTTL: parseDuration(leaseTTL) ?? EtcdOptions.defaultLeaseTTL))
    }
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
