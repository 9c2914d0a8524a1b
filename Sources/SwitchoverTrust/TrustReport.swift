import Foundation
import SwitchoverCore

/// The status of one trust check. `warn` does not break trust (exit 0); `fail` does.
public enum TrustCheckStatus: String, Sendable, Codable, Hashable, Comparable {
    case pass, warn, fail

    private var rank: Int { self == .pass ? 0 : self == .warn ? 1 : 2 }
    public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }
}

/// One named check. Names are stable (scripts read them from the JSON):
/// `trustDomain`, `roots.shared`, `chain.<a>-verifies-against-<b>`, `validity.<cluster>.roots`,
/// `validity.<cluster>.chain`, `probe.<cluster>`.
public struct TrustCheck: Sendable, Codable, Hashable {
    public var name: String
    public var status: TrustCheckStatus
    public var detail: String
    public init(name: String, status: TrustCheckStatus, detail: String) {
        self.name = name
        self.status = status
        self.detail = detail
    }
}

/// A certificate as the report shows it. Dates encode as ISO 8601 strings whatever the
/// encoder's date strategy, because the JSON is a contract (DESIGN.md section 2).
public struct CertificateSummary: Sendable, Codable, Hashable {
    public var sha256: String
    public var subject: String
    public var issuer: String
    public var notBefore: Date
    public var notAfter: Date

    public init(_ certificate: Certificate) {
        sha256 = certificate.sha256
        subject = certificate.subject
        issuer = certificate.issuer
        notBefore = certificate.notBefore
        notAfter = certificate.notAfter
    }

    private enum CodingKeys: String, CodingKey { case sha256, subject, issuer, notBefore, notAfter }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        sha256 = try container.decode(String.self, forKey: .sha256)
        subject = try container.decode(String.self, forKey: .subject)
        issuer = try container.decode(String.self, forKey: .issuer)
        notBefore = try Date(container.decode(String.self, forKey: .notBefore), strategy: .iso8601)
        notAfter = try Date(container.decode(String.self, forKey: .notAfter), strategy: .iso8601)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(sha256, forKey: .sha256)
        try container.encode(subject, forKey: .subject)
        try container.encode(issuer, forKey: .issuer)
        try container.encode(UTCTimestamp.string(notBefore), forKey: .notBefore)
        try container.encode(UTCTimestamp.string(notAfter), forKey: .notAfter)
    }
}

/// What a live probe saw: the endpoint and the workload identity presented there.
public struct ProbeSummary: Sendable, Codable, Hashable {
    public var endpoint: String
    /// The leaf's SPIFFE ID, when it had one.
    public var identity: String?
    public var leaf: CertificateSummary?
}

/// One cluster's side of the report.
public struct ClusterTrust: Sendable, Codable, Hashable {
    public var trustDomain: String
    public var roots: [CertificateSummary]
    /// The cluster CA's chain, intermediate first; empty when none is configured.
    public var chain: [CertificateSummary]
    public var probe: ProbeSummary?
    /// Where the roots and the chain were read when they came from the cluster (context,
    /// namespace, object, key, resourceVersion); absent when they came from files.
    public var rootsSource: TrustSourceRecord?
    public var chainSource: TrustSourceRecord?
}

/// The answer to "do these two clusters share mTLS trust?", with the evidence.
public struct TrustReport: Sendable, Codable, Hashable {
    public var from: String
    public var to: String
    /// True when no check failed (warnings allowed).
    public var trusted: Bool
    public var checks: [TrustCheck]
    /// Keyed by cluster name.
    public var clusters: [String: ClusterTrust]
    /// The instant certificates were checked at.
    public var checkedAt: String

    public init(from: String, to: String, checks: [TrustCheck], clusters: [String: ClusterTrust], checkedAt: Date) {
        self.from = from
        self.to = to
        self.trusted = !checks.contains { $0.status == .fail }
        self.checks = checks
        self.clusters = clusters
        self.checkedAt = UTCTimestamp.string(checkedAt)
    }

    /// The check named `name`, if it ran.
    public func check(_ name: String) -> TrustCheck? { checks.first { $0.name == name } }

    /// The one-line verdict the text output ends with.
    public var verdict: String {
        let failed = checks.filter { $0.status == .fail }.map(\.name)
        let warned = checks.filter { $0.status == .warn }.map(\.name)
        if !failed.isEmpty {
            return "NOT TRUSTED: \(from) and \(to) do not share mTLS trust (failed: \(failed.joined(separator: ", ")))"
        }
        if !warned.isEmpty {
            return "TRUSTED with warnings: \(from) and \(to) share mTLS trust (warn: \(warned.joined(separator: ", ")))"
        }
        return "TRUSTED: \(from) and \(to) share mTLS trust"
    }
}
