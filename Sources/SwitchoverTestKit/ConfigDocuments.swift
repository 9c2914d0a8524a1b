import Foundation

/// A `kind: Cluster` document as the clusters folder holds it (DESIGN.md section 3), for tests
/// and benchmarks: the one writer of cluster YAML outside the repository's examples.
public struct ClusterDocument: Sendable {
    public var name: String
    public var istioVersion: String
    public var trustDomain: String
    /// Paths as written in the file (absolute, or relative to the clusters folder).
    public var rootCerts: String
    public var certChain: String?
    public var probe: String?
    public var servers: [String]
    /// Servers service by service (`loadBalancer.services`), in order; when given, `servers` is
    /// not written.
    public var services: [(service: String, servers: [String])]?
    public var health: String?

    public init(name: String, istioVersion: String = "1.27.4", trustDomain: String = "cluster.local", rootCerts: String,
                certChain: String? = nil, probe: String? = nil, servers: [String] = [],
                services: [(service: String, servers: [String])]? = nil, health: String? = nil) {
        self.name = name
        self.istioVersion = istioVersion
        self.trustDomain = trustDomain
        self.rootCerts = rootCerts
        self.certChain = certChain
        self.probe = probe
        self.servers = servers
        self.services = services
        self.health = health
    }

    public var yaml: String {
        var lines = [
            "apiVersion: switchover.dev/v1alpha1",
            "kind: Cluster",
            "metadata:",
            "  name: \(name)",
            "spec:",
            "  istio:",
            "    version: \"\(istioVersion)\"",
            "  trust:",
            "    trustDomain: \(trustDomain)",
            "    rootCerts: \(rootCerts)",
        ]
        if let certChain { lines.append("    certChain: \(certChain)") }
        if let probe { lines.append("    probe: \(probe)") }
        if let services {
            lines += ["  loadBalancer:", "    services:"] + services.map { "      \($0.service): [\($0.servers.joined(separator: ", "))]" }
        } else {
            lines += ["  loadBalancer:", "    servers: [\(servers.joined(separator: ", "))]"]
        }
        if let health { lines.append("  health: \(health)") }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// A `kind: Policy` document (DESIGN.md section 3) with the fields labs set; every optional
/// field is written only when given, so the loader's defaults apply otherwise.
public struct PolicyDocument: Sendable {
    public var name: String
    /// The lines under `spec.loadBalancer:`, unindented (`driver: haproxy`, `haproxy:`, ...).
    public var loadBalancer: [String]
    public var steps: [Int]
    public var bake: String
    public var interval: String?
    public var sampling: String?
    public var failureThreshold: Int?
    public var pauseAfterErrors: Int?
    /// Each gate as one YAML item, unindented and without the dash
    /// (`name: e\nloadBalancer: {cluster: green, max5xxRatio: 0.05, minRequests: 5}`).
    public var gates: [String]
    public var automaticRollback: Bool
    public var hardSignal: (max5xxRatio: Double, minRequests: Int)?
    /// The lines under `spec.drain:`, unindented; nil: no drain section.
    public var drain: [String]?
    /// `spec.waves`, services moved together wave after wave; nil: not written.
    public var waves: [[String]]?
    /// Lines appended to `spec` as written (indented by two), such as `webhooks:` and its items.
    public var extraSpec: [String] = []

    public init(name: String, loadBalancer: [String], steps: [Int], bake: String, interval: String? = nil,
                sampling: String? = nil, failureThreshold: Int? = nil, pauseAfterErrors: Int? = nil, gates: [String] = [],
                automaticRollback: Bool = true, hardSignal: (max5xxRatio: Double, minRequests: Int)? = nil,
                drain: [String]? = nil, waves: [[String]]? = nil) {
        self.name = name
        self.loadBalancer = loadBalancer
        self.steps = steps
        self.bake = bake
        self.interval = interval
        self.sampling = sampling
        self.failureThreshold = failureThreshold
        self.pauseAfterErrors = pauseAfterErrors
        self.gates = gates
        self.automaticRollback = automaticRollback
        self.hardSignal = hardSignal
        self.drain = drain
        self.waves = waves
    }

    /// The `spec.loadBalancer` lines of an HAProxy driver on `socket`, backend `backend`.
    public static func haproxy(socket: String, backend: String = "app") -> [String] {
        ["driver: haproxy", "haproxy:", "  socket: \(socket)", "  backend: \(backend)"]
    }

    /// The drain section of the labs: nothing open allowed, `holdFor`, `dnsTTL`, `timeout`.
    public static func drain(holdFor: String, dnsTTL: String = "0s", timeout: String, forceAfter: String? = nil) -> [String] {
        ["maxActiveSessions: 0", "holdFor: \(holdFor)", "dnsTTL: \(dnsTTL)", "timeout: \(timeout)"]
            + (forceAfter.map { ["forceAfter: \($0)"] } ?? [])
    }

    public var yaml: String {
        func indented(_ lines: [String], by spaces: Int) -> [String] {
            lines.flatMap { $0.split(separator: "\n", omittingEmptySubsequences: false) }.map { String(repeating: " ", count: spaces) + $0 }
        }
        var lines = ["apiVersion: switchover.dev/v1alpha1", "kind: Policy", "metadata:", "  name: \(name)", "spec:",
                     "  loadBalancer:"] + indented(loadBalancer, by: 4)
        lines.append("  steps: [\(steps.map(String.init).joined(separator: ", "))]")
        lines.append("  bake: \(bake)")
        if let interval { lines.append("  interval: \(interval)") }
        if let sampling { lines.append("  sampling: \(sampling)") }
        if let failureThreshold { lines.append("  failureThreshold: \(failureThreshold)") }
        if let pauseAfterErrors { lines.append("  pauseAfterErrors: \(pauseAfterErrors)") }
        if !gates.isEmpty {
            lines.append("  gates:")
            for gate in gates {
                let gateLines = gate.split(separator: "\n").map(String.init)
                lines.append("    - " + gateLines[0])
                lines += indented(Array(gateLines.dropFirst()), by: 6)
            }
        }
        lines += ["  rollback:", "    automatic: \(automaticRollback)"]
        if let hardSignal {
            lines.append("    hardSignal: {max5xxRatio: \(hardSignal.max5xxRatio), minRequests: \(hardSignal.minRequests)}")
        }
        if let drain { lines += ["  drain:"] + indented(drain, by: 4) }
        if let waves { lines.append("  waves: [\(waves.map { "[\($0.joined(separator: ", "))]" }.joined(separator: ", "))]") }
        lines += indented(extraSpec, by: 2)
        return lines.joined(separator: "\n") + "\n"
    }
}

public enum ConfigDocuments {
    /// Writes `clusters/<name>.yaml` and `policies/<name>.yaml` under `folder`, creating the folders.
    public static func write(clusters: [ClusterDocument], policies: [PolicyDocument], in folder: URL) throws {
        let clusterFolder = folder.appendingPathComponent("clusters")
        let policyFolder = folder.appendingPathComponent("policies")
        try FileManager.default.createDirectory(at: clusterFolder, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: policyFolder, withIntermediateDirectories: true)
        for cluster in clusters {
            try cluster.yaml.write(to: clusterFolder.appendingPathComponent("\(cluster.name).yaml"), atomically: true, encoding: .utf8)
        }
        for policy in policies {
            try policy.yaml.write(to: policyFolder.appendingPathComponent("\(policy.name).yaml"), atomically: true, encoding: .utf8)
        }
    }

    /// A shared root (`pki/roots.pem`) and one intermediate per cluster (`pki/<name>-chain.pem`),
    /// made with the openssl command line: trust holds both ways. Returns each cluster's root
    /// bundle and chain, by name. The intermediates are made at the same time, each on a thread
    /// of its own (`TestPKI`'s async forms), so the cooperative pool is never blocked.
    public static func sharedTrust(in folder: URL, clusters: [String]) async throws -> [String: (roots: URL, chain: URL)] {
        let pki = try TestPKI(directory: folder.appendingPathComponent("pki"))
        let root = try await pki.makeRoot(name: "mesh-root", days: 365)
        let roots = try pki.bundle([root], named: "roots.pem")
        let intermediates = try await withThrowingTaskGroup(of: (String, TestCertificate).self) { group in
            for name in clusters {
                group.addTask { (name, try await pki.makeIntermediate(name: "\(name)-ca", issuer: root, days: 365)) }
            }
            return try await group.reduce(into: [String: TestCertificate]()) { $0[$1.0] = $1.1 }
        }
        var material: [String: (roots: URL, chain: URL)] = [:]
        for name in clusters {
            material[name] = (roots, try pki.bundle([intermediates[name]!], named: "\(name)-chain.pem"))
        }
        return material
    }

    /// `sharedTrust(in:clusters:)` for a thread that may block (the benchmark's lab).
    @available(*, noasync, message: "runs openssl on its thread: `try await` the async form")
    public static func sharedTrust(in folder: URL, clusters: [String]) throws -> [String: (roots: URL, chain: URL)] {
        let pki = try TestPKI(directory: folder.appendingPathComponent("pki"))
        let root = try pki.makeRoot(name: "mesh-root", days: 365)
        let roots = try pki.bundle([root], named: "roots.pem")
        var material: [String: (roots: URL, chain: URL)] = [:]
        for name in clusters {
            let ca = try pki.makeIntermediate(name: "\(name)-ca", issuer: root, days: 365)
            material[name] = (roots, try pki.bundle([ca], named: "\(name)-chain.pem"))
        }
        return material
    }
}
