/// The largest values a configuration file may hold, with the reason for each (README,
/// Configuration, "Limits"). Beyond them a value is a typo or an attack, not a plan: the loader
/// reports it at its line and column instead of carrying it into arithmetic or a run.
public enum ConfigurationLimits {
    // MARK: Durations
    //
    // Every duration is bounded, so every sum the coordinator and `plan` make of them stays far
    // inside `Int64` nanoseconds (about 292 years): the longest bake times the most steps is
    // 3,000 days. `9223372036854775807ns` once killed `validate` and `30000d` killed `plan`.

    /// How long one step is watched. A month per step is already a very slow cutover.
    public static let bake: Duration = .seconds(30 * 86_400)
    /// How often gates are evaluated (and never longer than `bake`). Once a day is the least
    /// that still watches a step.
    public static let interval: Duration = .seconds(86_400)
    /// How often the load balancer is read: the hard signal's reaction time. A minute is
    /// already slow for a signal meant to roll back at once.
    public static let sampling: Duration = .seconds(60)
    /// A load-balancer gate's mean response time threshold.
    public static let maxMeanResponseTime: Duration = .seconds(3_600)
    /// How long FROM must stay idle before it counts as drained.
    public static let holdFor: Duration = .seconds(7 * 86_400)
    /// The DNS TTL clients may have cached FROM's address for: 7 days is what resolvers cap
    /// cached TTLs at (BIND's max-cache-ttl default).
    public static let dnsTTL: Duration = .seconds(7 * 86_400)
    /// The drain's timeout (and `forceAfter`, which must come before it).
    public static let drainTimeout: Duration = .seconds(30 * 86_400)
    /// A webhook's or a notification's timeout (an hour: a confirmation is asked again every interval anyway).
    public static let hookTimeout: Duration = .seconds(3_600)
    /// How far ahead certificate expiry warns.
    public static let trustHorizon: Duration = .seconds(365 * 86_400)

    // MARK: Sizes
    //
    // A file's size bounds the work of parsing it; the lists' sizes bound what a run does per
    // step and what a wrong file can make the loader report.

    /// The largest configuration file read. The examples are under 2 KB; a cluster listing
    /// 5,000 servers is about 100 KB. Larger files are refused before YAML parsing (a 10 MB
    /// file of five million steps once took 31 s and 2.3 GB to refuse).
    public static let fileBytes = 1 << 20
    /// YAML aliases (`*name`) in one file: each may stand for a value as large as the file.
    public static let aliases = 100
    /// Steps of a policy: each is watched for a whole bake; 100 steps of 1% is already finer
    /// than any load balancer needs.
    public static let steps = 100
    /// Services of one load balancer, and waves: each is a backend read and written at every
    /// step on every instance.
    public static let services = 200
    /// Load-balancer instances: every weight is written to each and read back from each.
    public static let instances = 20
    /// Servers of one cluster: the size the fleet benchmark measures (10,000 in one backend).
    public static let servers = 5_000
    /// Gates of a policy: all are evaluated every interval.
    public static let gates = 50
}
