import ArgumentParser
import SwitchoverCore
import SwitchoverRuntime

/// `--metrics-address` and `--metrics-linger`, shared by `run` and `drain` (DESIGN.md section 2).
/// Passed through as they are: the runtime checks the address and listens on it (a malformed or
/// busy address refuses with exit 2 before anything else happens).
struct MetricsOptionGroup: ParsableArguments {
    @Option(name: .customLong("metrics-address"), help: ArgumentHelp(
        "Serve Prometheus text exposition at /metrics on HOST:PORT.",
        discussion: "Only that address is bound, e.g. 127.0.0.1:9464; any other path answers 404.", valueName: "host:port"))
    var address: String?

    @Option(name: .customLong("metrics-linger"), help: ArgumentHelp(
        "Once the run is done, keep /metrics up until one more scrape has read the final state, at most this long.",
        discussion: "Default 0s: the process exits at once, and a scrape may never see promoted or rolledBack. "
            + "Set it to the scrape interval to be sure one does."))
    var linger: String = "0s"

    func validate() throws {
        guard let duration = parseDuration(linger), duration >= .zero else {
            throw ValidationError("--metrics-linger: '\(linger)' is not a duration such as 15s")
        }
        if address == nil && duration > .zero {
            throw ValidationError("--metrics-linger needs --metrics-address")
        }
    }

    /// What the runtime is asked, nil without `--metrics-address`.
    var options: MetricsOptions? {
        address.map { MetricsOptions(address: $0, linger: parseDuration(linger) ?? .zero) }
    }
}
