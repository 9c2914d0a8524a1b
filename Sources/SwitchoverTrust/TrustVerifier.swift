import Foundation
import Logging
import SwitchoverCore

/// Loaded, parsed trust material of one cluster: what every check reads.
public struct ClusterTrustMaterial: Sendable {
    public var name: String
    public var spec: TrustSpec
    public var roots: CertificateBundle
    /// Empty when `certChain` is not configured.
    public var chain: [Certificate]

    /// Where the roots came from when read from the cluster (nil: the file `spec.rootCerts`).
    public var rootsSource: TrustSourceRecord?
    public var chainSource: TrustSourceRecord?

    /// Loads `rootCerts` and `certChain` from their files, or from `fetched` (what was read from
    /// the cluster for `rootCertsObject` and `certChainObject`). Throws ``TrustError`` (naming the
    /// file or the object) on bad input.
    public static func load(cluster name: String, spec: TrustSpec, fetched: [KubeObjectRef: FetchedTrustObject] = [:]) throws -> ClusterTrustMaterial {
        func bundle(file: String?, object: KubeObjectRef?) throws -> (CertificateBundle, TrustSourceRecord?)? {
            if let object {
                guard let got = fetched[object] else {
                    throw TrustError(.missingFile, file: "cluster \(name): \(object)", detail: "was not read from the cluster")
                }
                return (try CertificateBundle.parse(got.bytes, path: got.record.description), got.record)
            }
            return try file.map { (try CertificateBundle.load(path: $0), nil) }
        }
        guard let (roots, rootsSource) = try bundle(file: spec.rootCerts, object: spec.rootCertsObject) else {
            throw TrustError(.missingFile, file: spec.rootCerts, detail: "no such file")
        }
        let chain = try bundle(file: spec.certChain, object: spec.certChainObject)
        if let probe = spec.probe { _ = try ProbeEndpoint(probe, cluster: name) }
        var material = ClusterTrustMaterial(name: name, spec: spec, roots: roots, chain: chain?.0.certificates ?? [])
        material.rootsSource = rootsSource
        material.chainSource = chain?.1
        return material
    }
}

/// Where trust material was read in a cluster: the context, the object and the version read.
public struct TrustSourceRecord: Sendable, Codable, Hashable, CustomStringConvertible {
    public var cluster: String
    public var context: String
    public var kind: String
    public var namespace: String
    public var object: String
    public var key: String
    public var resourceVersion: String?
    public init(cluster: String, context: String, kind: String, namespace: String, object: String, key: String, resourceVersion: String?) {
        self.cluster = cluster
        self.context = context
        self.kind = kind
        self.namespace = namespace
        self.object = object
        self.key = key
        self.resourceVersion = resourceVersion
    }
    /// `cluster blue (context blue-admin): ConfigMap istio-system/istio-ca-root-cert key root-cert.pem`
    public var description: String {
        "cluster \(cluster) (context \(context)): \(kind) \(namespace)/\(object) key \(key)"
    }
}

/// One key of an object read from the cluster, and where it came from.
public struct FetchedTrustObject: Sendable {
    public var bytes: [UInt8]
    public var record: TrustSourceRecord
    public init(bytes: [UInt8], record: TrustSourceRecord) {
        self.bytes = bytes
        self.record = record
    }
}

/// Reads one key of a ConfigMap or Secret of a cluster (the runtime's, over the Kubernetes API).
/// Throws ``TrustError`` naming the cluster, the context and the object when it cannot.
public typealias TrustObjectFetch = @Sendable (_ cluster: Cluster, _ object: KubeObjectRef) async throws -> FetchedTrustObject

/// Runs the offline checks (everything but the probe) on two clusters' loaded material.
/// Synchronous and without I/O, so that it can be benchmarked and called from anywhere.
public enum TrustChecks {
    /// The checks in report order, `probe.*` excluded.
    public static func run(from a: ClusterTrustMaterial, to b: ClusterTrustMaterial, horizon: Duration,
                           now: Date) throws -> [TrustCheck] {
        let domain = trustDomain(a, b)
        let chainAB = try chain(of: a, against: b, now: now)
        let chainBA = try chain(of: b, against: a, now: now)
        let roots = sharedRoots(a, b, chainChecks: [chainAB, chainBA])
        var checks = [domain, roots, chainAB, chainBA]
        for side in [a, b] {
            checks.append(validity(name: "validity.\(side.name).roots", what: "root", side.roots.certificates, now: now, horizon: horizon))
            if !side.chain.isEmpty {
                checks.append(validity(name: "validity.\(side.name).chain", what: "chain certificate", side.chain, now: now, horizon: horizon))
            }
        }
        return checks
    }

    static func trustDomain(_ a: ClusterTrustMaterial, _ b: ClusterTrustMaterial) -> TrustCheck {
        if a.spec.trustDomain == b.spec.trustDomain {
            return TrustCheck(name: "trustDomain", status: .pass, detail: "\(a.spec.trustDomain) on both sides")
        }
        return TrustCheck(name: "trustDomain", status: .fail,
                          detail: "\(a.name) is \(a.spec.trustDomain), \(b.name) is \(b.spec.trustDomain): SPIFFE identities from one are not authorized by the other")
    }

    static func sharedRoots(_ a: ClusterTrustMaterial, _ b: ClusterTrustMaterial, chainChecks: [TrustCheck]) -> TrustCheck {
        let name = "roots.shared"
        let setA = Set(a.roots.certificates.map(\.sha256))
        let setB = Set(b.roots.certificates.map(\.sha256))
        if setA == setB {
            return TrustCheck(name: name, status: .pass,
                              detail: "\(setA.count) root(s), the same on both sides (compared by SHA-256 of the DER)")
        }
        let onlyA = a.roots.certificates.filter { !setB.contains($0.sha256) }
        let onlyB = b.roots.certificates.filter { !setA.contains($0.sha256) }
        var parts: [String] = []
        if !onlyA.isEmpty { parts.append("only in \(a.name): \(onlyA.map(describe).joined(separator: ", "))") }
        if !onlyB.isEmpty { parts.append("only in \(b.name): \(onlyB.map(describe).joined(separator: ", "))") }
        let sameSubject = Set(onlyA.map(\.subject)).intersection(onlyB.map(\.subject))
        if !sameSubject.isEmpty {
            parts.append("same subject, different keys: \(sameSubject.sorted().joined(separator: "; "))")
        }
        if setA.isDisjoint(with: setB) {
            return TrustCheck(name: name, status: .fail, detail: "no root in common; " + parts.joined(separator: "; "))
        }
        let failing = chainChecks.filter { $0.status == .fail }.map(\.name)
        if failing.isEmpty {
            return TrustCheck(name: name, status: .warn,
                              detail: "roots differ (rotation in progress?), chains still verify both ways; " + parts.joined(separator: "; "))
        }
        return TrustCheck(name: name, status: .fail,
                          detail: "roots differ and trust does not hold (\(failing.joined(separator: ", ")) failed); " + parts.joined(separator: "; "))
    }

    static func chain(of a: ClusterTrustMaterial, against b: ClusterTrustMaterial, now: Date) throws -> TrustCheck {
        let name = "chain.\(a.name)-verifies-against-\(b.name)"
        guard let first = a.chain.first else {
            // No chain: the cluster's own root issues its workload certificates (Istio's
            // self-signed CA). The other side must then trust that root.
            let trusted = a.roots.certificates.filter { c in b.roots.certificates.contains { $0.sha256 == c.sha256 } }
            let count = a.roots.certificates.count
            if trusted.count == count {
                return TrustCheck(name: name, status: .pass,
                                  detail: "\(a.name) has no certChain (its roots issue workloads); \(b.name) trusts all \(count) of its roots")
            }
            return TrustCheck(name: name, status: trusted.isEmpty ? .fail : .warn,
                              detail: "\(a.name) has no certChain (its roots issue workloads); \(b.name) trusts \(trusted.count) of its \(count) root(s)")
        }
        if !first.isCA {
            return TrustCheck(name: name, status: .fail,
                              detail: "\(a.name)'s certChain[0] (\(first.subject)) is not a CA certificate (basicConstraints CA:TRUE and keyCertSign required): it cannot issue workload certificates")
        }
        let result = try ChainVerifier.verify(a.chain, against: b.roots.certificates, at: now)
        if result.verified {
            let anchor = result.anchor.map { " at \(describe($0))" } ?? ""
            return TrustCheck(name: name, status: .pass,
                              detail: "\(a.name)'s chain (\(first.subject)) verifies against \(b.name)'s roots\(anchor)")
        }
        var detail = "\(a.name)'s chain does not verify against \(b.name)'s roots: \(result.reason ?? "unknown reason")"
        if try ChainVerifier.verify(a.chain, against: a.roots.certificates, at: now).verified {
            detail += "; it verifies only against \(a.name)'s own roots"
        }
        return TrustCheck(name: name, status: .fail, detail: detail)
    }

    static func validity(name: String, what: String, _ certificates: [Certificate], now: Date, horizon: Duration) -> TrustCheck {
        let horizonEnd = now.addingTimeInterval(horizon.seconds)
        var failures: [String] = []
        var warnings: [String] = []
        for c in certificates {
            if c.notAfter <= now {
                failures.append("\(c.subject) expired \(day(c.notAfter))")
            } else if c.notBefore > now {
                failures.append("\(c.subject) is not valid before \(day(c.notBefore))")
            } else if c.notAfter <= horizonEnd {
                let days = Int((c.notAfter.timeIntervalSince(now) / 86_400).rounded(.down))
                warnings.append("\(c.subject) expires \(day(c.notAfter)) (in \(days) days, inside the \(format(horizon)) horizon)")
            }
        }
        if !failures.isEmpty { return TrustCheck(name: name, status: .fail, detail: (failures + warnings).joined(separator: "; ")) }
        if !warnings.isEmpty { return TrustCheck(name: name, status: .warn, detail: warnings.joined(separator: "; ")) }
        guard let earliest = certificates.min(by: { $0.notAfter < $1.notAfter }) else {
            return TrustCheck(name: name, status: .pass, detail: "no \(what)")
        }
        return TrustCheck(name: name, status: .pass,
                          detail: "\(certificates.count) \(what)(s) valid; earliest expiry \(day(earliest.notAfter)) (\(earliest.subject))")
    }

    static func describe(_ c: Certificate) -> String { "\(c.subject) [\(c.sha256.prefix(12))]" }
    static func day(_ date: Date) -> String { UTCTimestamp.string(date) }

    static func format(_ d: Duration) -> String {
        let s = Int(d.seconds)
        if s % 86_400 == 0 { return "\(s / 86_400)d" }
        if s % 3_600 == 0 { return "\(s / 3_600)h" }
        return "\(s)s"
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Proves that two clusters share mTLS trust (DESIGN.md section 4): loads both sides' roots and
/// chains, compares roots by fingerprint, verifies each chain against the other's roots, checks
/// trust domains and validity, and with `probe` handshakes with each cluster's probe endpoint.
///
/// Bad input (a missing, empty, garbage, DER, key or truncated file; a malformed probe address)
/// throws ``TrustError`` before any check runs. A trust problem is never thrown: it is a `fail`
/// check and `trusted == false` in the report.
///
/// Material a cluster document reads from the cluster (`rootCerts: {configMap: …}`) is read with
/// `fetch` first, both clusters at once; without `fetch` such a cluster is bad input.
public func verifyTrust(from: Cluster, to: Cluster, horizon: Duration, probe: Bool, now: Date,
                        probeOptions: ProbeOptions = ProbeOptions(), fetch: TrustObjectFetch? = nil,
                        logger: Logger = Logger(label: "switchover.trust")) async throws -> TrustReport {
    var fetched: [KubeObjectRef: FetchedTrustObject] = [:]
    let wanted = [from, to].flatMap { cluster in
        [cluster.trust.rootCertsObject, cluster.trust.certChainObject].compactMap { $0 }.map { (cluster, $0) }
    }
    if !wanted.isEmpty {
        guard let fetch else {
            throw TrustError(.missingFile, file: "\(wanted[0].0.name): \(wanted[0].1)", detail: "is read from the cluster, and no Kubernetes client was given")
        }
        try await withThrowingTaskGroup(of: (KubeObjectRef, FetchedTrustObject).self) { group in
            for (cluster, object) in wanted {
                group.addTask { (object, try await fetch(cluster, object)) }
            }
            for try await (object, got) in group { fetched[object] = got }
        }
    }
    let a = try ClusterTrustMaterial.load(cluster: from.name, spec: from.trust, fetched: fetched)
    let b = try ClusterTrustMaterial.load(cluster: to.name, spec: to.trust, fetched: fetched)
    try probeOptions.validate()
    logger.debug("trust: loaded material", metadata: [
        "from": "\(from.name)", "to": "\(to.name)",
        "fromRoots": "\(a.roots.certificates.count)", "toRoots": "\(b.roots.certificates.count)",
    ])
    var checks = try TrustChecks.run(from: a, to: b, horizon: horizon, now: now)
    var clusters = [a.name: summary(a), b.name: summary(b)]
    if probe {
        async let probeA = TLSProbe.probe(a, verifiedBy: b, options: probeOptions, now: now)
        async let probeB = TLSProbe.probe(b, verifiedBy: a, options: probeOptions, now: now)
        for (check, seen) in await [probeA, probeB] {
            checks.append(check)
            if let seen { clusters[seen.cluster]?.probe = seen.summary }
            logger.debug("trust: probe", metadata: ["check": "\(check.name)", "status": "\(check.status.rawValue)"])
        }
    }
    return TrustReport(from: from.name, to: to.name, checks: checks, clusters: clusters, checkedAt: now)
}

func summary(_ side: ClusterTrustMaterial) -> ClusterTrust {
    var summary = ClusterTrust(trustDomain: side.spec.trustDomain, roots: side.roots.certificates.map(CertificateSummary.init),
                               chain: side.chain.map(CertificateSummary.init), probe: nil)
    summary.rootsSource = side.rootsSource
    summary.chainSource = side.chainSource
    return summary
}
