import Foundation
import Logging
import SwitchoverAWS
import SwitchoverCore
import SwitchoverNet

/// `driver: route53`: two weighted DNS records of one name in a Route53 hosted zone, one per
/// cluster, told apart by their `SetIdentifier` (`Route53Router`). A router only: DNS counts no
/// traffic, so the counters come from the policy's `traffic.prometheus`.
///
/// ```yaml
/// # policy spec.loadBalancer
/// driver: route53
/// route53:
///   hostedZoneId: Z0123456789
///   recordName: app.example.com.
///   recordType: CNAME
///   region: us-east-1                  # signing region
///   endpoint: http://127.0.0.1:5000    # optional, default AWS's
///   insyncTimeout: 5m                  # optional: how long a change may stay PENDING before the run pauses
///   ignoreExternalDNSOwnership: false  # optional: write records external-dns owns anyway
///   readEvery: 5s                      # optional: the sampling loop reads the records at most this often
/// # cluster spec.loadBalancer
/// route53: {setIdentifier: blue, value: blue-ingress.example.com}
/// ```
public struct Route53Driver: LoadBalancerDriver {
    public init() {}

    public var name: String { "route53" }
    /// Route53's weights are 0–255 per record, one record per cluster: 1% is 198 against 2.
    public var translation: WeightTranslation { WeightTranslation(maxWeight: Route53Client.weightRange.upperBound) }
    /// A DNS record has no drain state and no sessions.
    public var capabilities: RouterCapabilities { [] }
    public var readsClusterSection: Bool { true }
    public var countsTraffic: Bool { false }

    public func limitation(_ capability: RouterCapabilities) -> String {
        "a Route53 record has no drain state and sees no sessions: clients stop resolving to a cluster whose weight is 0 once their cached answers expire (the record's TTL)"
    }

    /// The record types a weighted record pointing at one cluster can have.
    static let recordTypes = ["A", "AAAA", "CNAME"]

    public func decodeSection(_ section: ConfigValue) -> (any DriverSpec)? {
        guard let route53 = section.mapping(context: "spec.loadBalancer.route53",
                                            known: ["hostedZoneId", "recordName", "recordType", "region", "endpoint",
                                                    "insyncTimeout", "ignoreExternalDNSOwnership", "readEvery"]) else { return nil }
        let zone = route53.required("hostedZoneId")?.nonEmptyString()
        let recordName = route53.required("recordName")?.nonEmptyString()
        var recordType: String?
        if let value = route53.required("recordType"), let text = value.nonEmptyString() {
            if Self.recordTypes.contains(text) {
                recordType = text
            } else {
                value.error("recordType \(ConfigValue.quoted(text)) is not one a weighted record per cluster can have; use \(Self.recordTypes.joined(separator: ", "))")
            }
        }
        let region = route53.required("region")?.nonEmptyString()
        var endpointOK = true
        var endpoint: URL?
        if let value = route53.optional("endpoint") {
            endpoint = value.httpURL()
            endpointOK = endpoint != nil
        }
        let timeout = decodeTimeout(route53.optional("insyncTimeout"), default: .seconds(300))
        let ignore = decodeBool(route53.optional("ignoreExternalDNSOwnership"))
        let readEvery = decodeReadEvery(route53.optional("readEvery"))
        guard let zone, let recordName, let recordType, let region, endpointOK, let timeout, let ignore, let readEvery else { return nil }
        return Route53Spec(hostedZoneId: zone, recordName: recordName, recordType: recordType, region: region,
                           endpoint: endpoint?.absoluteString, insyncTimeout: timeout, ignoreExternalDNSOwnership: ignore,
                           readEvery: readEvery.value)
    }

    public func decodeClusterSection(_ section: ConfigValue) -> (any ClusterSectionSpec)? {
        guard let route53 = section.mapping(context: "spec.loadBalancer.route53", known: ["setIdentifier", "value"]) else { return nil }
        let identifier = route53.required("setIdentifier")?.nonEmptyString()
        let value = route53.required("value")?.nonEmptyString()
        guard let identifier, let value else { return nil }
        return Route53ClusterSpec(setIdentifier: identifier, value: value)
    }

    public func make(_ settings: any DriverSpec, from: ClusterServers, to: ClusterServers, logger: Logger) throws
        -> (router: any WeightRouter, observer: (any TrafficObserver)?) {
        let spec = try driverSettings(settings, as: Route53Spec.self, driver: name)
        let client = try awsClient(driver: name, logger: logger)
        return (try Route53Router(spec: spec, from: from, to: to, client: client, logger: logger), nil)
    }
}

/// A policy's `spec.loadBalancer.route53`.
public struct Route53Spec: DriverSpec {
    public var hostedZoneId: String
    /// As written; compared as Route53 writes names (trailing dot, case ignored).
    public var recordName: String
    public var recordType: String
    /// The signing region (Route53 is global; `us-east-1` in AWS's main partition).
    public var region: String
    /// nil: AWS's own endpoint.
    public var endpoint: String?
    /// How long a change may stay PENDING before the step fails (the run pauses).
    public var insyncTimeout: Duration
    /// Write records that carry external-dns's ownership TXT record anyway.
    public var ignoreExternalDNSOwnership: Bool
    /// As written; nil: `defaultReadEvery`.
    public var readEveryAsWritten: Duration?
    /// How often the sampling loop reads the records at most (`PacedReads`).
    public var readEvery: Duration { readEveryAsWritten ?? Self.defaultReadEvery }
    /// One read in 5 s: 4% of the account's five requests a second.
    public static let defaultReadEvery = Duration.seconds(5)

    public init(hostedZoneId: String, recordName: String, recordType: String, region: String, endpoint: String? = nil,
                insyncTimeout: Duration = .seconds(300), ignoreExternalDNSOwnership: Bool = false, readEvery: Duration? = nil) {
        self.hostedZoneId = hostedZoneId
        self.recordName = recordName
        self.recordType = recordType
        self.region = region
        self.endpoint = endpoint
        self.insyncTimeout = insyncTimeout
        self.ignoreExternalDNSOwnership = ignoreExternalDNSOwnership
        self.readEveryAsWritten = readEvery
    }

    /// `readEvery` only when written, so fingerprints of policies without it stay as they were.
    public var fingerprint: String {
        "hostedZoneId=\(hostedZoneId) recordName=\(recordName) recordType=\(recordType) region=\(region) endpoint=\(endpoint ?? "-")"
            + " insyncTimeout=\(formatDuration(insyncTimeout)) ignoreExternalDNSOwnership=\(ignoreExternalDNSOwnership)"
            + (readEveryAsWritten.map { " readEvery=\(formatDuration($0))" } ?? "")
    }
}

/// A cluster's `spec.loadBalancer.route53`: its weighted record's set identifier and value.
public struct Route53ClusterSpec: ClusterSectionSpec {
    public var setIdentifier: String
    /// What the record answers (a CNAME's target, an A record's address).
    public var value: String
    public init(setIdentifier: String, value: String) {
        self.setIdentifier = setIdentifier
        self.value = value
    }
    public var server: String { setIdentifier }
    public var fingerprint: String { "setIdentifier=\(setIdentifier) value=\(value)" }
}

extension LoadBalancerSpec {
    /// `driver: route53` with `spec`, for policies built in code.
    public static func route53(_ spec: Route53Spec) -> LoadBalancerSpec {
        LoadBalancerSpec(driver: Route53Driver(), settings: spec)
    }
}

// MARK: - shared by the AWS drivers

/// `true` or `false`; absent: false.
func decodeBool(_ value: ConfigValue?) -> Bool? {
    guard let value else { return false }
    guard let text = value.string() else { return nil }
    switch text {
    case "true": return true
    case "false": return false
    default:
        value.error("'\(value.key)' must be true or false, got \(ConfigValue.quoted(text))")
        return nil
    }
}

/// An optional setting as written: `value` nil when it is absent (the driver's default applies).
struct AsWritten<T> {
    var value: T?
}

/// `readEvery`: from 250ms (the default sampling period) to 5m. Nil when the value is refused
/// (the error is reported at its line).
func decodeReadEvery(_ value: ConfigValue?) -> AsWritten<Duration>? {
    guard let value else { return AsWritten(value: nil) }
    guard let text = value.string() else { return nil }
    guard let duration = parseDuration(text), duration >= .milliseconds(250), duration <= .seconds(300) else {
        value.error("'readEvery' must be a duration from 250ms to 5m (like 5s), got \(ConfigValue.quoted(text))")
        return nil
    }
    return AsWritten(value: duration)
}

/// A positive duration (`30s`, `5m`); absent: `defaultValue`.
func decodeTimeout(_ value: ConfigValue?, default defaultValue: Duration) -> Duration? {
    guard let value else { return defaultValue }
    guard let text = value.string() else { return nil }
    guard let duration = parseDuration(text), duration > .zero, duration <= .seconds(86_400) else {
        value.error("'\(value.key)' must be a duration above 0 and at most 24h (like 30s or 5m), got \(ConfigValue.quoted(text))")
        return nil
    }
    return duration
}

/// The AWS client of a router: credentials as every AWS tool resolves them, resolved now, so
/// that missing ones are a configuration error before anything is asked.
func awsClient(driver: String, environment: [String: String] = ProcessInfo.processInfo.environment,
               logger: Logger) throws -> AWSClient {
    let credentials: AWSCredentials
    do {
        credentials = try AWSCredentials.resolve(environment: environment)
    } catch {
        throw LoadBalancerError(.invalidConfiguration, driver: driver, address: "-", message: "\(error)")
    }
    let http = HTTPClient(configuration: .init(connectTimeout: .seconds(5), timeout: .seconds(30)), logger: logger)
    return AWSClient(credentials: credentials, http: http, logger: logger)
}
