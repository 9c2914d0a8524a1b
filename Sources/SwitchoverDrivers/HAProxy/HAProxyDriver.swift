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
/// ```
public struct HAProxyDriver: LoadBalancerDriver {
    public init() {}

    public var name: String { "haproxy" }
    /// 0–256 per server (`set server B/S weight N`).
    public var translation: WeightTranslation { .haproxy }
    /// `set server B/S state drain|ready`, `shutdown sessions server B/S`.
    public var capabilities: RouterCapabilities { [.drain, .ready, .shutdownSessions] }

    public func decodeSection(_ section: ConfigValue) -> (any DriverSpec)? {
        guard let haproxy = section.mapping(context: "spec.loadBalancer.haproxy", known: ["socket", "backend"]) else {
            return nil
        }
        var socket: String?
        if let value = haproxy.required("socket"), let text = value.nonEmptyString() {
            if text.hasPrefix("tcp://") {
                let address = String(text.dropFirst("tcp://".count))
                if let colon = address.lastIndex(of: ":"), colon != address.startIndex,
                   let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port) {
                    socket = text
                } else {
                    value.error("'socket' must be a UNIX socket path or tcp://host:port, got \(ConfigValue.quoted(text))")
                }
            } else if text.contains("://") {
                value.error("'socket' must be a UNIX socket path or tcp://host:port, got \(ConfigValue.quoted(text))")
            } else {
                socket = value.resolvePath(text)
            }
        }
        var backend: String?
        if let value = haproxy.required("backend"), let text = value.nonEmptyString() {
            if LoadBalancerName.isValid(text) {
                backend = text
            } else {
                value.error("backend \(ConfigValue.quoted(text)) is not a HAProxy backend name: \(LoadBalancerName.rule) (';', blanks, '/' and control characters are runtime-API syntax)")
            }
        }
        guard let socket, let backend else { return nil }
        return HAProxySpec(socket: socket, backend: backend)
    }

    public func make(_ settings: any DriverSpec, from: ClusterServers, to: ClusterServers, logger: Logger) throws
        -> (router: any WeightRouter, observer: (any TrafficObserver)?) {
        let spec = try driverSettings(settings, as: HAProxySpec.self, driver: name)
        let haproxy = try HAProxyLoadBalancer(spec: spec, from: from, to: to, logger: logger)
        return (haproxy, haproxy)
    }
}

/// A policy's `spec.loadBalancer.haproxy`.
public struct HAProxySpec: DriverSpec {
    /// A UNIX socket path, or `tcp://host:port`, of the runtime API (stats socket, level admin).
    public var socket: String
    public var backend: String
    public init(socket: String, backend: String) {
        self.socket = socket
        self.backend = backend
    }

    public var fingerprint: String { "socket=\(socket) backend=\(backend)" }
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
