import Foundation

/// What the domain knows of a load-balancer driver, and all it knows: the name a policy writes
/// in `spec.loadBalancer.driver`, how the driver's section `spec.loadBalancer.<name>` reads, the
/// load balancer's weight range, and what its router can do besides moving weights.
///
/// The set of drivers is open: `ConfigLoader` takes the descriptions it may meet as input
/// instead of a list of its own, and a policy's `LoadBalancerSpec` carries the description it
/// was read with, so `plan`, `validate` and the runtime take the weight range from the driver
/// itself. Each description lives with its driver (SwitchoverDrivers, one folder per driver),
/// next to how the driver is built; the registry there lists them, one line each. Core holds no
/// driver name, range or key.
public protocol DriverDescription: Sendable {
    /// The name written in `spec.loadBalancer.driver`, and the key of the driver's own section
    /// beside it: `haproxy`, `envoy`. Letters and digits; never `driver`.
    var name: String { get }
    /// How a percentage becomes this load balancer's integer weights (its range per entry).
    var translation: WeightTranslation { get }
    /// What the driver's router can do besides moving weights. The loader refuses a policy key
    /// that needs a capability the driver lacks (`drain.forceAfter` needs `.shutdownSessions`):
    /// a key that would do nothing must not parse.
    var capabilities: RouterCapabilities { get }

    /// Reads the driver's section, `spec.loadBalancer.<name>`, into its settings. Every problem
    /// is reported through `section` at its FILE:LINE:COL (unknown keys with a "did you mean",
    /// missing keys, bad values); nil when there was any.
    func decodeSection(_ section: ConfigValue) -> (any DriverSpec)?

    /// Why the driver lacks `capability`, for the message that refuses a key needing it:
    /// "Envoy cannot close the requests open to one cluster (...)".
    func limitation(_ capability: RouterCapabilities) -> String

    /// True when each cluster names its place in this load balancer in a section of its own,
    /// `spec.loadBalancer.<name>` of the Cluster (a Route53 record's set identifier and value,
    /// an ALB target group), instead of a list of `servers`.
    var readsClusterSection: Bool { get }

    /// Reads a cluster's section `spec.loadBalancer.<name>` (only called when
    /// `readsClusterSection`), with the loader's diagnostics; nil when there was any problem.
    func decodeClusterSection(_ section: ConfigValue) -> (any ClusterSectionSpec)?

    /// Whether the driver's load balancer counts the traffic it routes (HAProxy, Envoy), or only
    /// moves weights (DNS records, a cloud load balancer): a policy for a driver that counts
    /// nothing must name another source (`traffic.prometheus`), or the loader refuses it naming
    /// the driver. Default true.
    var countsTraffic: Bool { get }
}

extension DriverDescription {
    public var countsTraffic: Bool { true }

    public func limitation(_ capability: RouterCapabilities) -> String {
        "the \(name) driver cannot \(capability)"
    }

    public var readsClusterSection: Bool { false }
    public func decodeClusterSection(_ section: ConfigValue) -> (any ClusterSectionSpec)? { nil }
}

/// A cluster's own section for a driver (`spec.loadBalancer.route53` of a Cluster): where the
/// cluster sits in that load balancer. Opaque to the domain, like `DriverSpec`.
public protocol ClusterSectionSpec: Sendable, Hashable {
    /// The one name the cluster goes by in the router's weights (a Route53 set identifier, an
    /// ALB target group ARN): it stands as the cluster's single server in `plan` and the journal.
    var server: String { get }
    /// Every setting in one canonical line.
    var fingerprint: String { get }
}

/// One driver's section of a cluster, as read by that driver.
public struct ClusterSection: Sendable, Hashable {
    /// The driver whose section it is (its key in the cluster's `spec.loadBalancer`).
    public let driver: String
    public let spec: any ClusterSectionSpec
    public init(driver: String, spec: any ClusterSectionSpec) {
        self.driver = driver
        self.spec = spec
    }
    public static func == (a: ClusterSection, b: ClusterSection) -> Bool {
        a.driver == b.driver && AnyHashable(a.spec) == AnyHashable(b.spec)
    }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(driver)
        hasher.combine(spec.fingerprint)
    }
}

/// What a driver's router can do besides reading and writing weights, so that callers ask
/// before they act instead of catching an `unsupported` error afterwards.
public struct RouterCapabilities: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// `setDrain`: the load balancer has a drain state (no new balanced sessions to a cluster's
    /// servers, open ones and pinned clients kept), HAProxy's `state drain`.
    public static let drain = RouterCapabilities(rawValue: 1 << 0)
    /// `setReady`: the drain state can be undone (a rollback from the drain).
    public static let ready = RouterCapabilities(rawValue: 1 << 1)
    /// `shutdownSessions`: every session still open to a cluster can be closed on demand
    /// (policy `drain.forceAfter`).
    public static let shutdownSessions = RouterCapabilities(rawValue: 1 << 2)

    /// "put servers in a drain state", "close open sessions on demand", joined by "or".
    public var description: String {
        var parts: [String] = []
        if contains(.drain) { parts.append("put servers in a drain state") }
        if contains(.ready) { parts.append("make drained servers ready again") }
        if contains(.shutdownSessions) { parts.append("close open sessions on demand") }
        return parts.isEmpty ? "do nothing besides weights" : parts.joined(separator: " or ")
    }
}

/// A driver's settings, read from its policy section by its `DriverDescription`: opaque to the
/// domain, which only keeps them, compares them and fingerprints them. The driver that made
/// them reads them back (`LoadBalancerSpec.settings(as:)`) when it builds its router.
public protocol DriverSpec: Sendable, Hashable {
    /// Every setting in one canonical line, `socket=/run/haproxy/admin.sock backend=app`: the
    /// journal keeps it (`PolicyFingerprint`) to tell a run resumed under an edited policy, so
    /// it must change whenever a setting does, and never show a secret as written (hash it).
    var fingerprint: String { get }
    /// The services this load balancer carries (service -> backend or route), in the order
    /// written; nil for one service (the single form).
    var services: [String]? { get }
    /// The names of the load-balancer instances every weight goes to; one in the single form.
    var instances: [String] { get }
}

extension DriverSpec {
    public var services: [String]? { nil }
    public var instances: [String] { ["default"] }
}

extension DriverSpec {
    /// Equal to `other` when it is the same type with the same settings.
    func isEqual(to other: any DriverSpec) -> Bool {
        (other as? Self) == self
    }
}
