import Foundation
import Logging
import SwitchoverCore

/// `driver: haproxy`: HAProxy through its runtime API (`HAProxyLoadBalancer`, which both moves
/// weights and counts traffic).
///
/// ```yaml
/// loadBalancer:
///   driver: haproxy
///   haproxy:
///     socket: /run/haproxy/admin.sock   # or tcp://127.0.0.1:9999; a relative path is the file's
///     backend: app
/// # or several instances and services (DESIGN.md, "Many services, several load-balancer instances"):
/// #   instances: [{name: lb-a, socket: tcp://127.0.0.1:9901}, {name: lb-b, socket: /run/haproxy-b/admin.sock}]
/// #   services: {checkout: be_checkout, cart: be_cart}
/// ```
public struct HAProxyDriver: LoadBalancerDriver {
    public init() {}

    public var name: String { "haproxy" }
    /// 0–256 per server (`set server B/S weight N`).
    public var translation: WeightTranslation { .haproxy }
    /// `set server B/S state drain|ready`, `shutdown sessions server B/S`.
    public var capabilities: RouterCapabilities { [.drain, .ready, .shutdownSessions] }

    public func decodeSection(_ section: ConfigValue) -> (any DriverSpec)? {
        guard let haproxy = section.mapping(context: "spec.loadBalancer.haproxy",
                                            known: ["socket", "backend", "instances", "services"]) else {
            return nil
        }
        var ok = true
        for (one, many) in [("socket", "instances"), ("backend", "services")] where haproxy.mentions(one) && haproxy.mentions(many) {
            haproxy.optional(many)?.error("'\(one)' and '\(many)' are both set; '\(many)' lists every one, so remove '\(one)'")
            ok = false
        }
        guard ok else { return nil }

        var instances: [HAProxyInstance]?
        if let value = haproxy.optional("instances") {
            instances = decodeInstances(value)
        } else if let value = haproxy.required("socket") {
            instances = decodeSocket(value).map { [HAProxyInstance(name: name, socket: $0)] }
        }
        var backends: [ServiceBackend]?
        if let value = haproxy.optional("services") {
            backends = decodeServiceTargets(value, what: "HAProxy backend", target: decodeBackend)
        } else if let value = haproxy.required("backend") {
            backends = decodeBackend(value).map { [ServiceBackend(service: nil, backend: $0)] }
        }
        guard let instances, let backends else { return nil }
        return HAProxySpec(instances: instances, backends: backends)
    }

    /// `socket`: a UNIX socket path (relative to the file) or `tcp://host:port`.
    private func decodeSocket(_ value: ConfigValue) -> String? {
        guard let text = value.nonEmptyString() else { return nil }
        if text.hasPrefix("tcp://") {
            let address = String(text.dropFirst("tcp://".count))
            if let colon = address.lastIndex(of: ":"), colon != address.startIndex,
               let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port) {
                return text
            }
        } else if !text.contains("://") {
            return value.resolvePath(text)
        }
        value.error("'socket' must be a UNIX socket path or tcp://host:port, got \(ConfigValue.quoted(text))")
        return nil
    }

    private func decodeBackend(_ value: ConfigValue) -> String? {
        guard let text = value.nonEmptyString() else { return nil }
        guard LoadBalancerName.isValid(text) else {
            value.error("backend \(ConfigValue.quoted(text)) is not a HAProxy backend name: \(LoadBalancerName.rule) (';', blanks, '/' and control characters are runtime-API syntax)")
            return nil
        }
        return text
    }

    /// `instances: [{name: lb-a, socket: ...}, ...]`: names and sockets unique.
    private func decodeInstances(_ value: ConfigValue) -> [HAProxyInstance]? {
        decodeInstanceList(value, section: "spec.loadBalancer.haproxy", what: "HAProxy instance", known: ["name", "socket"]) { fields in
            guard let socketValue = fields.required("socket"), let socket = decodeSocket(socketValue) else { return nil }
            return ([InstanceClaim(value: "socket:\(socket)", at: socketValue) {
                        "two instances have the socket \(ConfigValue.quoted(socket)) (first at \($0)); that is one instance written twice"
                    }],
                    { HAProxyInstance(name: $0, socket: socket) })
        }
    }

    public func make(_ settings: any DriverSpec, from: ClusterServers, to: ClusterServers, logger: Logger) throws
        -> (router: any WeightRouter, observer: (any TrafficObserver)?) {
        let spec = try driverSettings(settings, as: HAProxySpec.self, driver: name)
        let haproxy = try HAProxyLoadBalancer(spec: spec, from: from, to: to, logger: logger, shared: spec.sharedReads)
        return (haproxy, haproxy)
    }
}

/// A policy's `spec.loadBalancer.haproxy`: one instance and one backend (`socket`, `backend`),
/// or several of either (`instances`, `services`).
public struct HAProxySpec: DriverSpec, FleetSpec {
    /// Every HAProxy the weights go to (one in the single form, named `haproxy`).
    public var instanceList: [HAProxyInstance]
    /// Service -> backend; one entry without a service in the single form.
    public var backends: [ServiceBackend]
    /// A member of a fleet: the read of its instance, shared with the instance's other members
    /// (not a setting: not part of equality).
    var sharedReads: HAProxySharedReads?

    public static func == (lhs: HAProxySpec, rhs: HAProxySpec) -> Bool {
        lhs.instanceList == rhs.instanceList && lhs.backends == rhs.backends
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(instanceList)
        hasher.combine(backends)
    }

    public init(socket: String, backend: String) {
        self.init(instances: [HAProxyInstance(name: HAProxyDriver().name, socket: socket)],
                  backends: [ServiceBackend(service: nil, backend: backend)])
    }

    public init(instances: [HAProxyInstance], backends: [ServiceBackend]) {
        precondition(!instances.isEmpty && !backends.isEmpty, "an HAProxy spec has an instance and a backend")
        self.instanceList = instances
        self.backends = backends
    }

    /// A UNIX socket path, or `tcp://host:port`, of the (first) instance's runtime API.
    public var socket: String { instanceList[0].socket }
    /// The (first) backend.
    public var backend: String { backends[0].backend }

    public var serviceTargets: [ServiceBackend] { backends }

    public var instances: [String] { instanceList.map(\.name) }

    public var fingerprint: String {
        if instanceList.count == 1, backends.count == 1, backends[0].service == nil {
            return "socket=\(socket) backend=\(backend)"
        }
        return "instances=" + instanceList.map { "\($0.name)@\($0.socket)" }.joined(separator: ",")
            + " services=" + backends.map { "\($0.service ?? "-"):\($0.backend)" }.joined(separator: ",")
    }

    /// One member per instance and service; the services of one instance share its read (the
    /// fleet reads weights and counters of all of them in one round trip per instance).
    public var members: [FleetMember] {
        instanceList.flatMap { instance in
            let shared = HAProxySharedReads(address: instance.socket)
            return backends.map { backend in
                var spec = HAProxySpec(socket: instance.socket, backend: backend.backend)
                spec.sharedReads = shared
                return FleetMember(instance: instance.name, service: backend.service, spec: spec, target: backend.backend)
            }
        }
    }
}

/// One HAProxy of several (`instances`).
public struct HAProxyInstance: Sendable, Hashable {
    public var name: String
    public var socket: String
    public init(name: String, socket: String) {
        self.name = name
        self.socket = socket
    }
}

/// A service and the backend (HAProxy) or route (Envoy) that carries it; no service in the
/// single form.
public struct ServiceBackend: Sendable, Hashable {
    public var service: String?
    public var backend: String
    public init(service: String?, backend: String) {
        self.service = service
        self.backend = backend
    }
}

extension WeightTranslation {
    /// HAProxy's range: integers 0–256 per server.
    public static let haproxy = WeightTranslation(maxWeight: 256)
}

extension LoadBalancerSpec {
    /// `driver: haproxy` with `spec`, for policies built in code.
    public static func haproxy(_ spec: HAProxySpec) -> LoadBalancerSpec {
        LoadBalancerSpec(driver: HAProxyDriver(), settings: spec)
    }
}
