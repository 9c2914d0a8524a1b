import Foundation
import Yams

/// Reads the `spec` of a `kind: Cluster` document.
struct ClusterDecoder {
    let reader: DocumentReader
    /// The drivers whose own section a cluster may carry (`readsClusterSection`).
    var drivers: [any DriverDescription] = []

    /// The cluster when everything required could be read; problems are in `reader`.
    func decode(_ spec: Node, name: String, location: SourceLocation) -> Cluster? {
        guard let fields = reader.fields(spec, context: "spec", known: ["istio", "trust", "loadBalancer", "health", "kubernetes"]) else {
            return nil
        }
        var kubernetes: KubernetesAccess?
        var kubernetesOK = true
        if let node = fields.optional("kubernetes") {
            if let access = reader.fields(node, context: "spec.kubernetes", known: ["context"]),
               let contextNode = access.required("context"), let context = reader.nonEmptyString(contextNode, "context") {
                kubernetes = KubernetesAccess(context: context, location: reader.location(node))
            } else {
                kubernetesOK = false
            }
        }
        let istio = decodeIstio(fields.required("istio"), kubernetesWritten: fields.has("kubernetes"))
        let trust = decodeTrust(fields.required("trust"), kubernetes: kubernetesOK ? kubernetes : nil, kubernetesWritten: fields.has("kubernetes"))
        let loadBalancer = decodeLoadBalancer(fields.required("loadBalancer"))
        var health: URL?
        var healthOK = true
        if let node = fields.optional("health") {
            health = reader.httpURL(node, "health")
            healthOK = health != nil
        }
        guard let istio, let trust, let loadBalancer, healthOK, kubernetesOK else { return nil }
        var cluster = Cluster(name: name, istio: istio, trust: trust, loadBalancer: loadBalancer, health: health, location: location)
        cluster.kubernetes = kubernetes
        return cluster
    }

    private func decodeIstio(_ node: Node?, kubernetesWritten: Bool) -> IstioSpec? {
        guard let fields = reader.fields(node, context: "spec.istio", known: ["version", "revision"]) else { return nil }
        var version: String?
        var fromCluster = false
        if let node = fields.required("version"), let text = reader.nonEmptyString(node, "version") {
            if text == "auto" {
                if kubernetesWritten {
                    version = ""
                    fromCluster = true
                } else {
                    reader.error(node, "'version: auto' reads istiod's version from the cluster: add spec.kubernetes: {context: …}")
                }
            } else if isSemanticVersion(text) {
                version = text
            } else {
                reader.error(node, "'version' must be a semantic version such as 1.27.4, got \(quoted(text))")
            }
        }
        var revision: String?
        var revisionOK = true
        if let node = fields.optional("revision") {
            revision = reader.nonEmptyString(node, "revision")
            revisionOK = revision != nil
        }
        guard let version, revisionOK else { return nil }
        return IstioSpec(version: version, revision: revision, fromCluster: fromCluster)
    }

    /// `rootCerts` (and `certChain`): a file path, or `{configMap: {namespace, name, key}}` /
    /// `{secret: {...}}` read from the cluster, which then needs `spec.kubernetes`.
    private func trustSource(_ node: Node, _ key: String, kubernetes: KubernetesAccess?, kubernetesWritten: Bool)
        -> (file: String?, object: KubeObjectRef?)? {
        guard case .mapping = node else {
            return reader.existingFile(node, key).map { ($0, nil) }
        }
        guard let fields = reader.fields(node, context: "spec.trust.\(key)", known: ["configMap", "secret"]) else { return nil }
        let hasMap = fields.mentions("configMap"), hasSecret = fields.mentions("secret")
        guard hasMap != hasSecret else {
            reader.error(node, hasMap ? "'\(key)' names both a configMap and a secret; it is read from one object"
                                      : "'\(key)' is a file path, or {configMap: {namespace, name, key}} or {secret: {...}} in the cluster")
            return nil
        }
        let kind: KubeObjectRef.Kind = hasMap ? .configMap : .secret
        guard let objectNode = fields.optional(hasMap ? "configMap" : "secret"),
              let object = reader.fields(objectNode, context: "spec.trust.\(key).\(hasMap ? "configMap" : "secret")",
                                         known: ["namespace", "name", "key"]) else { return nil }
        let namespace = object.required("namespace").flatMap { reader.nonEmptyString($0, "namespace") }
        let name = object.required("name").flatMap { reader.nonEmptyString($0, "name") }
        let dataKey = object.required("key").flatMap { reader.nonEmptyString($0, "key") }
        guard let namespace, let name, let dataKey else { return nil }
        if kubernetes == nil && !kubernetesWritten {
            reader.error(node, "'\(key)' is read from the cluster (\(kind.rawValue) \(namespace)/\(name)): add spec.kubernetes: {context: …}, the kubeconfig context to read it with")
            return nil
        }
        return (nil, KubeObjectRef(kind: kind, namespace: namespace, name: name, key: dataKey, location: reader.location(objectNode)))
    }

    private func decodeTrust(_ node: Node?, kubernetes: KubernetesAccess?, kubernetesWritten: Bool) -> TrustSpec? {
        guard let fields = reader.fields(node, context: "spec.trust",
                                         known: ["trustDomain", "rootCerts", "certChain", "probe"]) else { return nil }
        var trustDomain: String?
        if let node = fields.required("trustDomain"), let text = reader.nonEmptyString(node, "trustDomain") {
            if text.hasPrefix("spiffe://") {
                reader.error(node, "'trustDomain' is the bare domain, such as cluster.local, without spiffe://; got \(quoted(text))")
            } else if text.contains("/") || text.contains(where: \.isWhitespace) {
                reader.error(node, "'trustDomain' must be a domain such as cluster.local, got \(quoted(text))")
            } else {
                trustDomain = text
            }
        }
        let rootCerts = fields.required("rootCerts").flatMap {
            trustSource($0, "rootCerts", kubernetes: kubernetes, kubernetesWritten: kubernetesWritten)
        }
        var certChain: (file: String?, object: KubeObjectRef?)?
        var chainOK = true
        if let node = fields.optional("certChain") {
            certChain = trustSource(node, "certChain", kubernetes: kubernetes, kubernetesWritten: kubernetesWritten)
            chainOK = certChain != nil
        }
        var probe: String?
        var probeOK = true
        if let node = fields.optional("probe") {
            probe = reader.hostPort(node, "probe")
            probeOK = probe != nil
        }
        guard let trustDomain, let rootCerts, chainOK, probeOK else { return nil }
        return TrustSpec(trustDomain: trustDomain, rootCerts: rootCerts.file ?? "", certChain: certChain?.file, probe: probe,
                         rootCertsObject: rootCerts.object, certChainObject: certChain?.object)
    }

    private func decodeLoadBalancer(_ node: Node?) -> ClusterLoadBalancerSpec? {
        let sectionDrivers = drivers.filter(\.readsClusterSection)
        guard let fields = reader.fields(node, context: "spec.loadBalancer",
                                         known: ["servers", "services"] + sectionDrivers.map(\.name)) else { return nil }
        // Drivers' own sections, in the order written (the first names the single server when
        // there is no `servers`).
        var sections: [ClusterSection] = []
        var sectionsOK = true
        if case .mapping(let mapping) = fields.node {
            for (key, value) in mapping {
                guard let name = key.scalar?.string, let driver = sectionDrivers.first(where: { $0.name == name }) else { continue }
                if let spec = driver.decodeClusterSection(ConfigValue(reader: reader, node: value, key: name)) {
                    sections.append(ClusterSection(driver: name, spec: spec))
                } else {
                    sectionsOK = false
                }
            }
        }
        guard sectionsOK else { return nil }
        if !sections.isEmpty, !fields.mentions("servers"), !fields.mentions("services") {
            return ClusterLoadBalancerSpec(sections: sections)
        }
        var placed = decodeServerLists(fields)
        placed?.sections = Dictionary(sections.map { ($0.driver, $0) }, uniquingKeysWith: { a, _ in a })
        return placed
    }

    private func decodeServerLists(_ fields: DocumentReader.Fields) -> ClusterLoadBalancerSpec? {
        var seen: [String: (node: Node, service: String?)] = [:]
        if fields.mentions("servers") && fields.mentions("services") {
            reader.error(fields.keyNode("services") ?? fields.node,
                         "spec.loadBalancer has both 'servers' and 'services'; list the servers of each service under 'services' (one service: 'servers' alone)")
            return nil
        }
        if let node = fields.optional("services") {
            guard case .mapping(let mapping) = node else {
                reader.error(node, "'services' must be a mapping of service names to lists of servers, got \(describe(node))")
                return nil
            }
            if mapping.count > ConfigurationLimits.services {
                reader.error(node, "'services' lists \(mapping.count) services, more than \(ConfigurationLimits.services) (each is read and written at every step on every instance)")
                return nil
            }
            if mapping.count == 0 {
                reader.error(node, "'services' is empty; list this cluster's servers of each service in the load balancer")
                return nil
            }
            var services: [ServiceServers] = []
            var ok = true
            for (key, value) in mapping {
                guard let name = reader.nonEmptyString(key, "services"), LoadBalancerName.isValid(name) else {
                    reader.error(key, "service names are load-balancer names: \(LoadBalancerName.rule)")
                    ok = false
                    continue
                }
                guard let servers = decodeServers(value, key: "services.\(name)", service: name, seen: &seen) else { ok = false; continue }
                services.append(ServiceServers(service: name, servers: servers, location: reader.location(key)))
            }
            return ok ? ClusterLoadBalancerSpec(services: services) : nil
        }
        guard let node = fields.required("servers"),
              let servers = decodeServers(node, key: "servers", service: nil, seen: &seen) else { return nil }
        return ClusterLoadBalancerSpec(servers: servers)
    }

    /// A list of server names, none seen before in this cluster (`seen`, across services).
    private func decodeServers(_ node: Node, key: String, service: String?,
                               seen: inout [String: (node: Node, service: String?)]) -> [String]? {
        guard let items = reader.sequence(node, key, atMost: ConfigurationLimits.servers,
                                          because: "a weight is written and read back for every server at every step") else { return nil }
        if items.isEmpty {
            reader.error(node, "'\(key)' is empty; list this cluster's servers in the load balancer")
            return nil
        }
        var servers: [String] = []
        var ok = true
        for item in items {
            guard let name = reader.nonEmptyString(item, key) else { ok = false; continue }
            guard LoadBalancerName.isValid(name) else {
                reader.error(item, "server \(quoted(name)) is not a load-balancer name: \(LoadBalancerName.rule) (';', blanks, '/' and control characters are runtime-API syntax)")
                ok = false
                continue
            }
            if let first = seen[name] {
                if let other = first.service, other != service {
                    reader.error(item, "server \(quoted(name)) is in two services, '\(other)' (\(reader.location(first.node))) and '\(service ?? "")'; a server belongs to one service")
                } else {
                    reader.error(item, "server \(quoted(name)) is listed twice (first at \(reader.location(first.node)))")
                }
                ok = false
                continue
            }
            seen[name] = (item, service)
            servers.append(name)
        }
        return ok ? servers : nil
    }
}

/// `1.27.4`, `1.28`, `1.28.0-beta.1`: numeric major.minor[.patch] with an optional suffix.
func isSemanticVersion(_ text: String) -> Bool {
    let core = text.split(separator: "-", maxSplits: 1).first.map(String.init) ?? ""
    let parts = core.split(separator: ".", omittingEmptySubsequences: false)
    return (2...3).contains(parts.count) && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
        && (text.hasSuffix("-") == false)
}
