import Foundation
import Logging
import SwitchoverCore

/// `driver: envoy`: Envoy with a file-based RDS route (`EnvoyLoadBalancer`, which both moves
/// weights and counts traffic).
///
/// ```yaml
/// loadBalancer:
///   driver: envoy
///   envoy:
///     routeFile: /etc/envoy/rds/route.yaml   # replaced by atomic rename; relative to the file
///     routeName: switch_route
///     admin: http://127.0.0.1:9901
/// ```
public struct EnvoyDriver: LoadBalancerDriver {
    public init() {}

    public var name: String { "envoy" }
    /// Envoy's weights are 32-bit; 10,000 per cluster gives shares to 0.01%.
    public var translation: WeightTranslation { WeightTranslation(maxWeight: 10_000) }
    /// No drain state short of weight 0, and nothing closes the requests open to one cluster.
    public var capabilities: RouterCapabilities { [] }

    public func limitation(_ capability: RouterCapabilities) -> String {
        if capability == .shutdownSessions {
            return "Envoy cannot close the requests open to one cluster (HAProxy's 'shutdown sessions' has no Envoy counterpart)"
        }
        return "Envoy has no drain state for a weighted cluster; its weight 0 is what stops new requests"
    }

    public func decodeSection(_ section: ConfigValue) -> (any DriverSpec)? {
        guard let envoy = section.mapping(context: "spec.loadBalancer.envoy", known: ["routeFile", "routeName", "admin"]) else {
            return nil
        }
        let routeFile = envoy.required("routeFile").flatMap { $0.path() }
        let routeName = envoy.required("routeName").flatMap { $0.nonEmptyString() }
        let admin = envoy.required("admin").flatMap { $0.httpURL() }
        guard let routeFile, let routeName, let admin else { return nil }
        return EnvoySpec(routeFile: routeFile, routeName: routeName, admin: admin)
    }

    public func make(_ settings: any DriverSpec, from: ClusterServers, to: ClusterServers, logger: Logger) throws
        -> (router: any WeightRouter, observer: (any TrafficObserver)?) {
        let spec = try driverSettings(settings, as: EnvoySpec.self, driver: name)
        let envoy = try EnvoyLoadBalancer(spec: spec, from: from, to: to, logger: logger)
        return (envoy, envoy)
    }
}

/// A policy's `spec.loadBalancer.envoy`.
public struct EnvoySpec: DriverSpec {
    /// The file-based RDS route file Envoy watches; replaced by atomic rename.
    public var routeFile: String
    public var routeName: String
    /// Envoy's admin endpoint, such as `http://127.0.0.1:9901`.
    public var admin: URL
    public init(routeFile: String, routeName: String, admin: URL) {
        self.routeFile = routeFile
        self.routeName = routeName
        self.admin = admin
    }

    public var fingerprint: String { "routeFile=\(routeFile) routeName=\(routeName) admin=\(admin.absoluteString)" }
}

extension LoadBalancerSpec {
    /// `driver: envoy` with `spec`, for policies built in code.
    public static func envoy(_ spec: EnvoySpec) -> LoadBalancerSpec {
        LoadBalancerSpec(driver: EnvoyDriver(), settings: spec)
    }
}
