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
/// # or several Envoys and services (each service a route of its own, each Envoy its own files):
/// #   services: {cart: cart_route, checkout: checkout_route}
/// #   instances:
/// #     - {name: edge-a, admin: http://127.0.0.1:9901, routeFiles: {cart: rds-a/cart.yaml, checkout: rds-a/checkout.yaml}}
/// #     - {name: edge-b, admin: http://127.0.0.1:9902, routeFiles: {cart: rds-b/cart.yaml, checkout: rds-b/checkout.yaml}}
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
        guard let envoy = section.mapping(context: "spec.loadBalancer.envoy",
                                          known: ["routeFile", "routeFiles", "routeName", "admin", "instances", "services"]) else {
            return nil
        }
        var ok = true
        for (one, many) in [("routeName", "services"), ("admin", "instances"), ("routeFile", "instances"), ("routeFiles", "instances"),
                            ("routeFile", "routeFiles")]
        where envoy.mentions(one) && envoy.mentions(many) {
            envoy.optional(many)?.error("'\(one)' and '\(many)' are both set; "
                + (many == "instances" ? "each instance names its own admin and route files" : many == "services" ? "'services' names each service's route" : "'routeFiles' is for 'services', 'routeFile' for one route"))
            ok = false
        }
        guard ok else { return nil }
        var routes: [ServiceBackend]?
        if let value = envoy.optional("services") {
            routes = decodeServiceTargets(value, what: "route", target: { $0.nonEmptyString() })
        } else if let name = envoy.required("routeName")?.nonEmptyString() {
            routes = [ServiceBackend(service: nil, backend: name)]
        }
        guard let routes else { return nil }
        let services = routes.compactMap(\.service)
        var instances: [EnvoyInstance]?
        if let value = envoy.optional("instances") {
            instances = decodeInstances(value, services: services)
        } else if let admin = envoy.required("admin")?.httpURL(), let files = decodeRouteFiles(envoy, services: services) {
            instances = [EnvoyInstance(name: name, admin: admin, routeFiles: files)]
        }
        guard let instances else { return nil }
        return EnvoySpec(instances: instances, routes: routes)
    }

    /// `routeFile` (one route) or `routeFiles: {service: file}` (every service, no other).
    private func decodeRouteFiles(_ mapping: ConfigMapping, services: [String]) -> [EnvoyRouteFile]? {
        guard !services.isEmpty else {
            return mapping.required("routeFile")?.path().map { [EnvoyRouteFile(service: nil, path: $0)] }
        }
        if mapping.mentions("routeFile") {
            mapping.optional("routeFile")?.error("with 'services', each service's route file goes in 'routeFiles' (service: file)")
            return nil
        }
        guard let value = mapping.required("routeFiles"),
              let entries = value.entries(atMost: ConfigurationLimits.services, because: "one route file per service") else { return nil }
        var files: [EnvoyRouteFile] = []
        var ok = true
        for entry in entries {
            guard let service = entry.name.nonEmptyString(), let path = entry.value.path() else { ok = false; continue }
            if !services.contains(service) {
                entry.name.error("'routeFiles' names service \(ConfigValue.quoted(service)), which 'services' does not map to a route")
                ok = false
                continue
            }
            files.append(EnvoyRouteFile(service: service, path: path))
        }
        let missing = services.filter { service in !files.contains { $0.service == service } }
        if ok, !missing.isEmpty {
            value.error("'routeFiles' has no file for \(missing.map { ConfigValue.quoted($0) }.joined(separator: ", ")); every service needs its route file")
            ok = false
        }
        return ok ? files : nil
    }

    /// `instances: [{name, admin, routeFile | routeFiles}]`: names, admins and files unique.
    private func decodeInstances(_ value: ConfigValue, services: [String]) -> [EnvoyInstance]? {
        decodeInstanceList(value, section: "spec.loadBalancer.envoy", what: "Envoy",
                           known: ["name", "admin", "routeFile", "routeFiles"]) { fields in
            let adminValue = fields.required("admin")
            let admin = adminValue?.httpURL()
            let routeFiles = decodeRouteFiles(fields, services: services)
            guard let adminValue, let admin, let routeFiles,
                  let filesValue = fields.optional("routeFiles") ?? fields.optional("routeFile") else { return nil }
            return ([InstanceClaim(value: "admin:\(admin.absoluteString)", at: adminValue) {
                        "two instances have the admin \(ConfigValue.quoted(admin.absoluteString)) (first at \($0)); that is one Envoy written twice"
                    }] + routeFiles.map { file in
                        InstanceClaim(value: "file:\(file.path)", at: filesValue) {
                            "route file \(ConfigValue.quoted(file.path)) is written by two instances or services (first at \($0)); each needs its own"
                        }
                    },
                    { EnvoyInstance(name: $0, admin: admin, routeFiles: routeFiles) })
        }
    }

    public func make(_ settings: any DriverSpec, from: ClusterServers, to: ClusterServers, logger: Logger) throws
        -> (router: any WeightRouter, observer: (any TrafficObserver)?) {
        let spec = try driverSettings(settings, as: EnvoySpec.self, driver: name)
        let envoy = try EnvoyLoadBalancer(spec: spec, from: from, to: to, logger: logger)
        return (envoy, envoy)
    }
}

/// A policy's `spec.loadBalancer.envoy`: one Envoy and one route (`routeFile`, `routeName`,
/// `admin`), or several of either (`instances`, `services`; DESIGN.md, "Many services, several
/// load-balancer instances"): each service is an RDS route of its own, and each instance has
/// its own admin and its own route file per service.
public struct EnvoySpec: DriverSpec, FleetSpec {
    public var instanceList: [EnvoyInstance]
    /// Service -> route name; one entry without a service in the single form.
    public var routes: [ServiceBackend]

    public init(routeFile: String, routeName: String, admin: URL) {
        self.init(instances: [EnvoyInstance(name: EnvoyDriver().name, admin: admin,
                                            routeFiles: [EnvoyRouteFile(service: nil, path: routeFile)])],
                  routes: [ServiceBackend(service: nil, backend: routeName)])
    }

    public init(instances: [EnvoyInstance], routes: [ServiceBackend]) {
        precondition(!instances.isEmpty && !routes.isEmpty, "an Envoy spec has an instance and a route")
        self.instanceList = instances
        self.routes = routes
    }

    /// The (first) instance's (first) route file, route name and admin.
    public var routeFile: String { instanceList[0].routeFiles[0].path }
    public var routeName: String { routes[0].backend }
    public var admin: URL { instanceList[0].admin }

    public var serviceTargets: [ServiceBackend] { routes }

    public var instances: [String] { instanceList.map(\.name) }

    public var fingerprint: String {
        if instanceList.count == 1, routes.count == 1, routes[0].service == nil {
            return "routeFile=\(routeFile) routeName=\(routeName) admin=\(admin.absoluteString)"
        }
        return "instances=" + instanceList.map { instance in
            "\(instance.name)@\(instance.admin.absoluteString)[" + instance.routeFiles.map { "\($0.service ?? "-"):\($0.path)" }.joined(separator: ",") + "]"
        }.joined(separator: ",") + " services=" + routes.map { "\($0.service ?? "-"):\($0.backend)" }.joined(separator: ",")
    }

    public var members: [FleetMember] {
        instanceList.flatMap { instance in
            routes.map { route in
                let file = instance.routeFiles.first { $0.service == route.service }?.path ?? instance.routeFiles[0].path
                return FleetMember(instance: instance.name, service: route.service,
                                   spec: EnvoySpec(routeFile: file, routeName: route.backend, admin: instance.admin),
                                   target: "route \(route.backend)")
            }
        }
    }
}

/// One Envoy of several (`instances`): its admin and its route file per service.
public struct EnvoyInstance: Sendable, Hashable {
    public var name: String
    public var admin: URL
    public var routeFiles: [EnvoyRouteFile]
    public init(name: String, admin: URL, routeFiles: [EnvoyRouteFile]) {
        self.name = name
        self.admin = admin
        self.routeFiles = routeFiles
    }
}

/// The file-based RDS file of one service's route (no service in the single form).
public struct EnvoyRouteFile: Sendable, Hashable {
    public var service: String?
    public var path: String
    public init(service: String?, path: String) {
        self.service = service
        self.path = path
    }
}

extension LoadBalancerSpec {
    /// `driver: envoy` with `spec`, for policies built in code.
    public static func envoy(_ spec: EnvoySpec) -> LoadBalancerSpec {
        LoadBalancerSpec(driver: EnvoyDriver(), settings: spec)
    }
}
