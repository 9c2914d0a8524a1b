import Foundation

/// Where something stands in a configuration file, for `FILE:LINE:COL: message` diagnostics.
public struct SourceLocation: Sendable, Hashable, Codable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }
    public var description: String { "\(file):\(line):\(column)" }
}

/// The `apiVersion` every Switchover document carries.
public let switchoverAPIVersion = "switchover.dev/v1alpha1"

/// A Kubernetes cluster on one side of the switchover: blue runs the old Istio, green the new.
public struct Cluster: Sendable, Hashable {
    public var name: String
    public var istio: IstioSpec
    public var trust: TrustSpec
    public var loadBalancer: ClusterLoadBalancerSpec
    /// Probed in preflight: the cluster must answer 2xx here before any traffic moves.
    public var health: URL?
    /// `spec.kubernetes`: the kubeconfig context to read the cluster's objects with; nil when
    /// everything comes from files.
    public var kubernetes: KubernetesAccess?
    /// Where the document starts, for errors about the cluster as a whole.
    public var location: SourceLocation

    public init(name: String, istio: IstioSpec, trust: TrustSpec, loadBalancer: ClusterLoadBalancerSpec,
                health: URL?, location: SourceLocation) {
        self.name = name
        self.istio = istio
        self.trust = trust
        self.loadBalancer = loadBalancer
        self.health = health
        self.location = location
    }
}

public struct IstioSpec: Sendable, Hashable {
    /// Semantic version of the control plane, such as `1.27.4`; empty with `version: auto`.
    public var version: String
    /// The `istio.io/rev` revision label, such as `1-27`.
    public var revision: String?
    /// `version: auto`: istiod's version is read from the cluster (its Deployment's image tag).
    /// A written version is checked against the cluster too whenever `spec.kubernetes` is set.
    public var fromCluster: Bool = false
    public init(version: String, revision: String?, fromCluster: Bool = false) {
        self.version = version
        self.revision = revision
        self.fromCluster = fromCluster
    }
}

/// A control-plane version as Istio numbers them: `1.28.1` (a suffix such as `-distroless` or
/// `-rc.0` after the patch is ignored for ordering).
public struct IstioVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var patch: Int

    public init?(_ text: String) {
        let core = text.split(separator: "-", maxSplits: 1).first.map(String.init) ?? text
        let parts = core.split(separator: ".", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 3, let major = parts[0], let minor = parts[1], let patch = parts[2] else { return nil }
        self.major = major
        self.minor = minor
        self.patch = patch
    }

    public static func < (a: IstioVersion, b: IstioVersion) -> Bool {
        (a.major, a.minor, a.patch) < (b.major, b.minor, b.patch)
    }
    public var description: String { "\(major).\(minor).\(patch)" }

    /// The upgrade from `from` (blue) to `to` (green): a failure when green's control plane is
    /// older, a warning when it jumps more than one minor version (Istio supports upgrades one
    /// minor version at a time; blue/green clusters allow more, at the user's risk).
    public static func judge(from: String, _ a: IstioVersion, to: String, _ b: IstioVersion) -> (failure: String?, warning: String?) {
        if b < a {
            return ("istio: \(to)'s control plane (\(b)) is older than \(from)'s (\(a)): a switchover moves to a newer Istio, never an older one", nil)
        }
        if b.major != a.major || b.minor - a.minor > 1 {
            return (nil, "istio: \(from) \(a) → \(to) \(b) jumps more than one minor version; Istio supports upgrades one minor "
                    + "version at a time (what was deprecated in between is not warned about); blue/green clusters allow it, at your risk")
        }
        return (nil, nil)
    }
}

/// What a cluster's workloads trust and present. Paths are absolute: the loader resolves them
/// against the file they were written in.
public struct TrustSpec: Sendable, Hashable {
    public var trustDomain: String
    /// A PEM bundle of one or more roots (a file); empty when `rootCertsObject` says where in the
    /// cluster they are read from instead.
    public var rootCerts: String
    /// The cluster CA's chain, intermediate first; optional.
    public var certChain: String?
    /// `host:port` of an mTLS endpoint presenting a workload certificate, for `trust --probe`.
    public var probe: String?
    /// `rootCerts: {configMap: {...}}` or `{secret: {...}}`: read from the cluster at every check.
    public var rootCertsObject: KubeObjectRef?
    /// `certChain` read from the cluster the same way.
    public var certChainObject: KubeObjectRef?
    public init(trustDomain: String, rootCerts: String, certChain: String?, probe: String?,
                rootCertsObject: KubeObjectRef? = nil, certChainObject: KubeObjectRef? = nil) {
        self.trustDomain = trustDomain
        self.rootCerts = rootCerts
        self.certChain = certChain
        self.probe = probe
        self.rootCertsObject = rootCertsObject
        self.certChainObject = certChainObject
    }
}

/// How a cluster's API server is reached: a kubeconfig context (`spec.kubernetes.context`).
public struct KubernetesAccess: Sendable, Hashable {
    public var context: String
    public var location: SourceLocation
    public init(context: String, location: SourceLocation) {
        self.context = context
        self.location = location
    }
}

/// One key of a named ConfigMap or Secret in the cluster.
public struct KubeObjectRef: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable { case configMap = "ConfigMap", secret = "Secret" }
    public var kind: Kind
    public var namespace: String
    public var name: String
    public var key: String
    public var location: SourceLocation
    public init(kind: Kind, namespace: String, name: String, key: String, location: SourceLocation) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.key = key
        self.location = location
    }
    /// `ConfigMap istio-system/istio-ca-root-cert key root-cert.pem`
    public var description: String { "\(kind.rawValue) \(namespace)/\(name) key \(key)" }
}

public struct ClusterLoadBalancerSpec: Sendable, Hashable {
    /// This cluster's servers (HAProxy) or cluster (Envoy) in the load balancer, in order; with
    /// `services`, every service's servers, service after service.
    public var servers: [String]
    /// Service by service (`loadBalancer.services`), in the order written; nil in the single
    /// form (`loadBalancer.servers`: one service).
    public var services: [ServiceServers]?
    /// Drivers' own sections of this cluster (`route53: {setIdentifier, value}`), by driver
    /// name. Without `servers`, the first one written names the cluster's single server.
    public var sections: [String: ClusterSection] = [:]

    public init(servers: [String]) {
        self.servers = servers
        self.services = nil
    }

    /// A cluster placed by drivers' sections only: its one server is the first section's.
    public init(sections: [ClusterSection]) {
        precondition(!sections.isEmpty, "a cluster placed by driver sections has at least one")
        self.servers = [sections[0].spec.server]
        self.services = nil
        self.sections = Dictionary(sections.map { ($0.driver, $0) }, uniquingKeysWith: { a, _ in a })
    }

    public init(services: [ServiceServers]) {
        self.services = services
        self.servers = services.flatMap(\.servers)
    }

    /// The servers `driver` moves weights between: the one name of the cluster's section for it
    /// (a Route53 set identifier), or the `servers` list.
    public func servers(for driver: any DriverDescription) -> [String] {
        sections[driver.name].map { [$0.spec.server] } ?? servers
    }

    /// The servers of `service`, or every server when `service` is nil (the single form).
    public func servers(of service: String?) -> [String]? {
        guard let service else { return servers }
        return services?.first { $0.service == service }?.servers
    }
}

/// One service's servers of one cluster in the load balancer (`loadBalancer.services`).
public struct ServiceServers: Sendable, Hashable {
    public var service: String
    public var servers: [String]
    /// Where the service is written, for problems found across files.
    public var location: SourceLocation?
    public init(service: String, servers: [String], location: SourceLocation? = nil) {
        self.service = service
        self.servers = servers
        self.location = location
    }
}

/// How a cutover proceeds: the load balancer, the steps, the gates, rollback and drain.
public struct Policy: Sendable, Hashable {
    public var name: String
    public var loadBalancer: LoadBalancerSpec
    /// Percent of traffic to TO after each step; strictly increasing, ending at 100.
    public var steps: [Double]
    /// How long each step is watched before it may advance.
    public var bake: Duration
    /// How often gates are evaluated.
    public var interval: Duration
    /// How often the load balancer's counters are sampled (the hard signal's reaction time).
    public var sampling: Duration
    /// Failed gate evaluations within one step before an automatic rollback.
    public var failureThreshold: Int
    /// Consecutive `error` evaluations (a signal source down) before the run pauses.
    public var pauseAfterErrors: Int
    public var gates: [Gate]
    public var rollback: RollbackSpec
    public var drain: DrainSpec
    /// True when the policy file has a `drain` section (rather than the defaults): `run` then
    /// goes on to `drained` by default, since the person asked for the drain to be watched.
    public var drainDeclared: Bool = false
    /// Where each step is written, for problems found later about one step (one that the
    /// servers of a pair cannot express); empty for a policy built in code.
    public var stepLocations: [SourceLocation] = []
    /// `waves`: services moved together, wave after wave (each walks every step, then the next
    /// starts; earlier waves stay at 100%). Nil: every service in one wave.
    public var waves: [[String]]?
    public var decommission: DecommissionSpec
    /// Roots and intermediates expiring within this horizon are a trust `warn`.
    public var trustHorizon: Duration
    public var location: SourceLocation
    /// `webhooks`: Flagger's hook types (see `Webhook`). `rollout` hooks are gates too: each is
    /// also in `gates`, with source `.webhook`.
    public var webhooks: [Webhook] = []
    /// `notifications`: who is told of which events, and how.
    public var notifications: [NotificationTarget] = []
    /// `traffic`: where per-cluster counters come from instead of the driver's own; nil: the
    /// driver counts (HAProxy, Envoy).
    public var traffic: TrafficSpec?

    /// Where the gates, the hard signal and the drain get their per-cluster counters, for `plan`:
    /// Prometheus (its URL without query string or credentials) or the driver's load balancer.
    public var trafficSource: String {
        guard let p = traffic?.prometheus else { return "the \(loadBalancer.driverName) load balancer's own counters" }
        var shown = URLComponents(url: p.url, resolvingAgainstBaseURL: false) ?? URLComponents()
        shown.user = nil
        shown.password = nil
        shown.query = nil
        shown.fragment = nil
        let queries = ["requests", "errors"] + (p.activeSessions == nil ? [] : ["activeSessions"])
        let per = loadBalancer.services == nil ? "per cluster, $cluster substituted" : "per cluster and service, $cluster and $service substituted"
        return "Prometheus at \(shown.string ?? "?") (\(queries.joined(separator: ", ")) \(per))"
            + (loadBalancer.driver.countsTraffic ? ", in place of the \(loadBalancer.driverName) load balancer's own counters" : "")
    }

    /// The hooks of one type, in the order the policy lists them.
    public func webhooks(_ type: WebhookType) -> [Webhook] { webhooks.filter { $0.type == type } }

    public init(name: String, loadBalancer: LoadBalancerSpec, steps: [Double], bake: Duration, interval: Duration,
                sampling: Duration = .milliseconds(250), failureThreshold: Int, pauseAfterErrors: Int = 3,
                gates: [Gate], rollback: RollbackSpec, drain: DrainSpec, decommission: DecommissionSpec,
                trustHorizon: Duration = .seconds(30 * 86_400), location: SourceLocation) {
        self.name = name
        self.loadBalancer = loadBalancer
        self.steps = steps
        self.bake = bake
        self.interval = interval
        self.sampling = sampling
        self.failureThreshold = failureThreshold
        self.pauseAfterErrors = pauseAfterErrors
        self.gates = gates
        self.rollback = rollback
        self.drain = drain
        self.decommission = decommission
        self.trustHorizon = trustHorizon
        self.location = location
    }
}

/// The load balancer in front of both clusters: the driver a policy names in
/// `spec.loadBalancer.driver` and its settings, read from its section by that driver's
/// description. An unknown driver is a validation error listing the known ones, never a silent
/// fallback; which drivers are known is the loader's input (see `DriverDescription`).
public struct LoadBalancerSpec: Sendable, Hashable {
    /// The driver, as the loader was given it: its name, weight range and capabilities.
    public let driver: any DriverDescription
    /// Its section, as that driver read it.
    public let settings: any DriverSpec
    /// Where its section is written (nil for a policy built in code); not part of equality.
    public var settingsLocation: SourceLocation?
    /// Where each service of its `services` is written; not part of equality.
    public var serviceLocations: [String: SourceLocation] = [:]

    public init(driver: any DriverDescription, settings: any DriverSpec) {
        self.driver = driver
        self.settings = settings
    }

    public var driverName: String { driver.name }

    /// The services the policy maps to the load balancer (`haproxy.services`), in order; nil in
    /// the single-service form.
    public var services: [String]? { settings.services }

    /// The load-balancer instances the weights go to, by name (one in the single form).
    public var instances: [String] { settings.instances }

    /// How this driver's weights are bounded: the range `plan` shows and the runtime writes.
    public var weightTranslation: WeightTranslation { driver.translation }

    /// The settings as the driver's own type, nil when they are another driver's.
    public func settings<Spec: DriverSpec>(as type: Spec.Type) -> Spec? {
        settings as? Spec
    }

    /// The same driver (by name) with the same settings.
    public static func == (lhs: LoadBalancerSpec, rhs: LoadBalancerSpec) -> Bool {
        lhs.driver.name == rhs.driver.name && lhs.settings.isEqual(to: rhs.settings)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(driver.name)
        settings.hash(into: &hasher)
    }
}

/// One analysis gate. A step advances only when every gate has passed since the step began.
public struct Gate: Sendable, Hashable {
    public var name: String
    public var source: GateSource
    public var location: SourceLocation
    public init(name: String, source: GateSource, location: SourceLocation) {
        self.name = name
        self.source = source
        self.location = location
    }
}

public enum GateSource: Sendable, Hashable {
    case loadBalancer(LoadBalancerGate)
    case prometheus(PrometheusGate)
    /// A `rollout` webhook: 2xx passes, any other status fails, no answer is an error.
    case webhook(Webhook)

    /// Whether judging the gate takes HTTP requests (libcurl, loaded on the first of them:
    /// preflight makes sure it can be loaded before any weight moves).
    public var speaksHTTP: Bool {
        switch self {
        case .loadBalancer: false
        case .prometheus, .webhook: true
        }
    }
}

/// Flagger's webhook types, with Flagger's meanings (README "Hooks").
public enum WebhookType: String, Sendable, Hashable, Codable, CaseIterable {
    /// Before the first step: the run waits until it answers 2xx (asked every `interval`).
    case confirmRollout = "confirm-rollout"
    /// Once before the first step, after the confirm hooks: non-2xx or no answer aborts the run
    /// (exit 1) with no traffic moved.
    case preRollout = "pre-rollout"
    /// A gate, evaluated every `interval` while a step bakes: 2xx pass, other fail, no answer error.
    case rollout
    /// Before every step's weights are written: waits until 2xx.
    case confirmTrafficIncrease = "confirm-traffic-increase"
    /// Before the weights of the last step (100%) are written: waits until 2xx.
    case confirmPromotion = "confirm-promotion"
    /// Once the run is promoted or rolled back: told, its answer journaled, nothing waits on it.
    case postRollout = "post-rollout"
    /// Asked every `interval` while shifting or paused: a 2xx answer rolls back at once.
    case rollback
    /// Told of every event the progress line shows (as the `json` notification body).
    case event

    /// Hooks the run waits on until they answer 2xx.
    public var isConfirmation: Bool { self == .confirmRollout || self == .confirmTrafficIncrease || self == .confirmPromotion }

    /// When a hook of this type is called, for `plan`: `before step 4 (100%), until it answers 2xx`.
    public func when(lastStep: Int) -> String {
        switch self {
        case .confirmRollout: "before step 1, asked every interval until it answers 2xx"
        case .preRollout: "once before step 1 (after the confirm hooks); any other answer aborts the run with no traffic moved"
        case .rollout: "every interval while a step bakes: a gate (2xx pass, other fail, no answer error)"
        case .confirmTrafficIncrease: "before every step, asked every interval until it answers 2xx"
        case .confirmPromotion: "before step \(lastStep) (100%), asked every interval until it answers 2xx"
        case .postRollout: "once, when the run is promoted or its rollback verified"
        case .rollback: "every interval while shifting or paused: a 2xx answer rolls back"
        case .event: "told of every event the progress line shows"
        }
    }
}

/// One entry of the policy's `webhooks`: `{name, type, url, timeout, metadata, secretFile}`.
public struct Webhook: Sendable, Hashable {
    public var name: String
    public var type: WebhookType
    public var url: URL
    /// The whole exchange, connection included; past it the call has no answer (an `error`).
    public var timeout: Duration
    /// Sent in the body as `metadata` (Flagger's field of the same name).
    public var metadata: [String: String]
    /// A file holding the HMAC key (see `NotificationTarget.secretFile`); nil: unsigned.
    public var secretFile: String?
    public var location: SourceLocation
    public init(name: String, type: WebhookType, url: URL, timeout: Duration = .seconds(10),
                metadata: [String: String] = [:], secretFile: String? = nil, location: SourceLocation) {
        self.name = name
        self.type = type
        self.url = url
        self.timeout = timeout
        self.metadata = metadata
        self.secretFile = secretFile
        self.location = location
    }
}

/// One entry of the policy's `notifications`: who is told of which events.
public struct NotificationTarget: Sendable, Hashable {
    public enum Format: String, Sendable, Hashable, Codable, CaseIterable {
        /// Slack's incoming-webhook JSON: a short `text` and the facts as fields.
        case slack
        /// The contract's body: `{"run", "from", "to", "policy", "phase", "step", "percent",
        /// "event", "message", "at", ...}`.
        case json
    }
    public var name: String
    public var url: URL
    public var format: Format
    /// Event names (`NotificationEvents.known`): a phase entered, or an engine event's kind.
    public var events: [String]
    /// A file holding the HMAC-SHA256 key; every POST then carries
    /// `X-Switchover-Signature: sha256=<hex>`. Never world-readable (refused when loading).
    public var secretFile: String?
    public var timeout: Duration
    public var location: SourceLocation
    public init(name: String, url: URL, format: Format, events: [String], secretFile: String? = nil,
                timeout: Duration = .seconds(5), location: SourceLocation) {
        self.name = name
        self.url = url
        self.format = format
        self.events = events
        self.secretFile = secretFile
        self.timeout = timeout
        self.location = location
    }
}

/// The names a notification may subscribe to: every phase (told when the run enters it) and
/// every engine event kind, plus `hookWaiting`. Where a phase and an event share a name
/// (`paused`, `drained`, `decommissioned`) one notification is sent, for the event.
public enum NotificationEvents {
    public static var known: [String] {
        var names = Phase.allCases.map(\.rawValue)
        for kind in EngineEvent.Kind.allCases where !names.contains(kind.rawValue) { names.append(kind.rawValue) }
        return names
    }

    /// Whether `event` is one the name `name` asks for.
    public static func matches(_ name: String, _ event: EngineEvent) -> Bool {
        if event.kind.rawValue == name { return true }
        guard event.kind == .phaseChanged, let phase = event.phase, phase.rawValue == name else { return false }
        // A phase that is also an event kind is told by its event (one message, not two).
        return EngineEvent.Kind(rawValue: name) == nil
    }
}

/// Judged from the load balancer's own counters over the window since the last evaluation.
public struct LoadBalancerGate: Sendable, Hashable {
    /// The cluster whose traffic is judged (usually TO).
    public var cluster: String
    /// The one service judged; nil judges each service that has moved (or the only one).
    public var service: String?
    /// Fail when 5xx / all responses exceeds this (0–1).
    public var max5xxRatio: Double?
    /// Fewer requests than this in the window is `inconclusive`, never a pass.
    public var minRequests: Int
    /// Fail when the mean response time exceeds this.
    public var maxMeanResponseTime: Duration?
    public init(cluster: String, service: String? = nil, max5xxRatio: Double?, minRequests: Int,
                maxMeanResponseTime: Duration?) {
        self.cluster = cluster
        self.service = service
        self.max5xxRatio = max5xxRatio
        self.minRequests = minRequests
        self.maxMeanResponseTime = maxMeanResponseTime
    }
}

/// A PromQL instant query whose scalar or single-sample result is compared with `min`/`max`.
/// `spec.traffic`: where per-cluster counters come from when the policy's router counts none
/// (Route53, an ALB), or when a user prefers mesh metrics to the load balancer's own (HAProxy,
/// Envoy). When set, it replaces the driver's counters for the gates, the hard signal and the
/// drain; the router still moves and reads the weights.
public struct TrafficSpec: Sendable, Hashable {
    public var prometheus: PrometheusTraffic
    public init(prometheus: PrometheusTraffic) { self.prometheus = prometheus }
}

/// `traffic.prometheus`: PromQL instant queries, each with `$cluster` standing for FROM's or
/// TO's name, asked once per cluster at every sample. `requests` and `errors` are counters (a
/// `sum` of `istio_requests_total`, of HAProxy's per-server `http_responses_total`): the gates
/// judge their growth between samples, as they judge a load balancer's own counters.
public struct PrometheusTraffic: Sendable, Hashable {
    /// Prometheus's base URL (a proxy's path prefix and query parameters allowed, as for a gate).
    public var url: URL
    /// Requests answered so far by the cluster (every class).
    public var requests: String
    /// Of those, the 5xx answers so far.
    public var errors: String
    /// Requests or sessions open now on the cluster, for the drain; nil: not counted (0).
    public var activeSessions: String?
    public var location: SourceLocation?

    /// The placeholder every query must hold: without it one query would count both clusters.
    public static let placeholder = "$cluster"
    /// With several services (`spec.loadBalancer.services`), every query must hold this one
    /// too: each service's counters are asked for on their own, so that its gates and the hard
    /// signal judge it alone.
    public static let servicePlaceholder = "$service"

    public init(url: URL, requests: String, errors: String, activeSessions: String?, location: SourceLocation? = nil) {
        self.url = url
        self.requests = requests
        self.errors = errors
        self.activeSessions = activeSessions
        self.location = location
    }

    /// `template` with every `$cluster` replaced by `cluster` (a DNS label: nothing in it needs
    /// quoting inside a PromQL string).
    public static func query(_ template: String, cluster: String, service: String? = nil) -> String {
        let forCluster = template.replacingOccurrences(of: placeholder, with: cluster)
        return service.map { forCluster.replacingOccurrences(of: servicePlaceholder, with: $0) } ?? forCluster
    }

    /// Equality leaves out where it was written.
    public static func == (a: PrometheusTraffic, b: PrometheusTraffic) -> Bool {
        a.url == b.url && a.requests == b.requests && a.errors == b.errors && a.activeSessions == b.activeSessions
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(url)
        hasher.combine(requests)
        hasher.combine(errors)
        hasher.combine(activeSessions)
    }
}

public struct PrometheusGate: Sendable, Hashable {
    public var url: URL
    public var query: String
    public var min: Double?
    public var max: Double?
    public init(url: URL, query: String, min: Double?, max: Double?) {
        self.url = url
        self.query = query
        self.min = min
        self.max = max
    }
}

public struct RollbackSpec: Sendable, Hashable {
    /// When false, a failing gate pauses the run instead of rolling it back.
    public var automatic: Bool
    /// TO's 5xx ratio over the latest load-balancer sample that rolls back at once.
    public var hardSignal: HardSignal?
    public init(automatic: Bool, hardSignal: HardSignal?) {
        self.automatic = automatic
        self.hardSignal = hardSignal
    }
}

public struct HardSignal: Sendable, Hashable {
    public var max5xxRatio: Double
    public var minRequests: Int
    public init(max5xxRatio: Double, minRequests: Int) {
        self.max5xxRatio = max5xxRatio
        self.minRequests = minRequests
    }
}

public struct DrainSpec: Sendable, Hashable {
    /// FROM counts as idle at or below this many active sessions.
    public var maxActiveSessions: Int
    /// How long FROM must stay idle, with no new session, to count as drained.
    public var holdFor: Duration
    /// The DNS TTL clients may have cached FROM's address for; drain waits at least this long.
    public var dnsTTL: Duration
    /// After this, the drain is reported as timed out with what is still open.
    public var timeout: Duration
    /// When set, sessions still open this long after the drain began are shut down.
    public var forceAfter: Duration?
    public init(maxActiveSessions: Int, holdFor: Duration, dnsTTL: Duration, timeout: Duration, forceAfter: Duration?) {
        self.maxActiveSessions = maxActiveSessions
        self.holdFor = holdFor
        self.dnsTTL = dnsTTL
        self.timeout = timeout
        self.forceAfter = forceAfter
    }
}

public struct DecommissionSpec: Sendable, Hashable {
    public var requireApproval: Bool
    public init(requireApproval: Bool) { self.requireApproval = requireApproval }
}
