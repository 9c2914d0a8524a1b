import Foundation
import SwitchoverTestKit
import SwitchoverTrust
import Testing

@Suite("Trust verification")
struct TrustVerificationTests {
    @Test("a shared root with one intermediate per cluster is trusted (EC and RSA)")
    func sharedRoot() async throws {
        let f = try TrustFixture()
        let root = try TrustPKI.root("Istio Root CA", key: .rsa2048)
        let blue = try f.cluster("blue", roots: [root], chain: [root.intermediate("blue intermediate", key: .ecP256), root])
        let green = try f.cluster("green", roots: [root], chain: [root.intermediate("green intermediate", key: .rsa2048)])
        let report = try await verify(blue, green)
        #expect(report.trusted)
        #expect(report.check("roots.shared")?.status == .pass)
        #expect(report.check("chain.blue-verifies-against-green")?.status == .pass)
        #expect(report.check("chain.green-verifies-against-blue")?.status == .pass)
        #expect(report.check("trustDomain")?.status == .pass)
        #expect(report.checks.allSatisfy { $0.status == .pass }, "\(report.checks)")
    }

    @Test("two roots with the same subject and different keys are not trusted")
    func sameSubjectDifferentKeys() async throws {
        let f = try TrustFixture()
        let blueRoot = try TrustPKI.root("Istio Root CA")
        let greenRoot = try TrustPKI.root("Istio Root CA")
        #expect(blueRoot.pem != greenRoot.pem)
        let blue = try f.cluster("blue", roots: [blueRoot], chain: [blueRoot.intermediate("blue intermediate")])
        let green = try f.cluster("green", roots: [greenRoot], chain: [greenRoot.intermediate("green intermediate")])
        let report = try await verify(blue, green)
        #expect(!report.trusted)
        let roots = try #require(report.check("roots.shared"))
        #expect(roots.status == .fail)
        #expect(roots.detail.contains("same subject, different keys"))
        #expect(report.check("chain.blue-verifies-against-green")?.status == .fail)
        #expect(report.check("chain.green-verifies-against-blue")?.status == .fail)
        #expect(report.check("chain.blue-verifies-against-green")?.detail.contains("only against blue's own roots") == true)
    }

    @Test("bundles with the same roots in a different order are trusted")
    func sameRootsDifferentOrder() async throws {
        let f = try TrustFixture()
        let ec = try TrustPKI.root("Root EC", key: .ecP256)
        let rsa = try TrustPKI.root("Root RSA", key: .rsa2048)
        let blue = try f.cluster("blue", roots: [ec, rsa], chain: [rsa.intermediate("blue intermediate")])
        let green = try f.cluster("green", roots: [rsa, ec], chain: [ec.intermediate("green intermediate")])
        let report = try await verify(blue, green)
        #expect(report.trusted)
        #expect(report.check("roots.shared")?.status == .pass)
        #expect(report.clusters["blue"]?.roots.count == 2)
        #expect(report.clusters["green"]?.roots.count == 2)
        #expect(Set(report.clusters["blue"]?.roots.map(\.sha256) ?? []) == Set(report.clusters["green"]?.roots.map(\.sha256) ?? []))
    }

    @Test("rotation: old+new on one side, old only on the other, chain from the new root: not trusted")
    func rotationChainFromNewRoot() async throws {
        let f = try TrustFixture()
        let old = try TrustPKI.root("Istio Root CA", key: .rsa2048)
        let new = try TrustPKI.root("Istio Root CA 2")
        let blue = try f.cluster("blue", roots: [old], chain: [old.intermediate("blue intermediate")])
        let green = try f.cluster("green", roots: [old, new], chain: [new.intermediate("green intermediate")])
        let report = try await verify(blue, green)
        #expect(!report.trusted)
        let chain = try #require(report.check("chain.green-verifies-against-blue"))
        #expect(chain.status == .fail)
        #expect(chain.detail.contains("unable to get local issuer certificate"))
        #expect(report.check("chain.blue-verifies-against-green")?.status == .pass)
        #expect(report.check("roots.shared")?.status == .fail)
    }

    @Test("rotation: old+new on one side, old only on the other, chain from the old root: trusted with a warning")
    func rotationChainFromOldRoot() async throws {
        let f = try TrustFixture()
        let old = try TrustPKI.root("Istio Root CA")
        let new = try TrustPKI.root("Istio Root CA 2", key: .rsa2048)
        let blue = try f.cluster("blue", roots: [old], chain: [old.intermediate("blue intermediate")])
        // The second root sits after the first in the file: a reader of only the first block would miss it.
        let green = try f.cluster("green", roots: [old, new], chain: [old.intermediate("green intermediate")])
        let report = try await verify(blue, green)
        #expect(report.trusted)
        let roots = try #require(report.check("roots.shared"))
        #expect(roots.status == .warn)
        #expect(roots.detail.contains("only in green: CN=Istio Root CA 2"))
        #expect(report.clusters["green"]?.roots.count == 2)
    }

    @Test("an expired intermediate fails")
    func expiredIntermediate() async throws {
        let f = try TrustFixture()
        let root = try TrustPKI.root("Istio Root CA")
        let expired = try root.intermediate("blue intermediate", notBefore: Date().addingTimeInterval(-400 * day),
                                            notAfter: Date().addingTimeInterval(-day))
        let blue = try f.cluster("blue", roots: [root], chain: [expired])
        let green = try f.cluster("green", roots: [root], chain: [root.intermediate("green intermediate")])
        let report = try await verify(blue, green)
        #expect(!report.trusted)
        let validity = try #require(report.check("validity.blue.chain"))
        #expect(validity.status == .fail)
        #expect(validity.detail.contains("expired"))
        #expect(report.check("chain.blue-verifies-against-green")?.detail.contains("certificate has expired") == true)
        #expect(report.check("validity.green.chain")?.status == .pass)
    }

    @Test("a root expiring in 10 days is a warning that says when")
    func rootExpiringSoon() async throws {
        let f = try TrustFixture()
        let notAfter = Date().addingTimeInterval(10 * day)
        let root = try TrustPKI.root("Istio Root CA", key: .rsa2048, notAfter: notAfter)
        let blue = try f.cluster("blue", roots: [root], chain: [root.intermediate("blue intermediate", notAfter: Date().addingTimeInterval(100 * day))])
        let green = try f.cluster("green", roots: [root], chain: [root.intermediate("green intermediate", notAfter: Date().addingTimeInterval(100 * day))])
        let report = try await verify(blue, green)
        #expect(report.trusted)
        let validity = try #require(report.check("validity.blue.roots"))
        #expect(validity.status == .warn)
        let expected = Date(timeIntervalSince1970: notAfter.timeIntervalSince1970.rounded(.down)).formatted(.iso8601)
        #expect(validity.detail.contains(expected), "\(validity.detail) should name \(expected)")
        #expect(validity.detail.contains("in 9 days") || validity.detail.contains("in 10 days"))
        #expect(report.check("validity.green.roots")?.status == .warn)
    }

    @Test("a root not valid yet fails")
    func rootNotYetValid() async throws {
        let f = try TrustFixture()
        let root = try TrustPKI.root("Istio Root CA", notBefore: Date().addingTimeInterval(2 * day))
        let blue = try f.cluster("blue", roots: [root])
        let green = try f.cluster("green", roots: [root])
        let report = try await verify(blue, green)
        #expect(!report.trusted)
        #expect(report.check("validity.blue.roots")?.status == .fail)
        #expect(report.check("validity.blue.roots")?.detail.contains("not valid before") == true)
    }

    @Test("a non-CA certificate used as an intermediate fails")
    func nonCAIntermediate() async throws {
        let f = try TrustFixture()
        let root = try TrustPKI.root("Istio Root CA")
        let blue = try f.cluster("blue", roots: [root], chain: [root.intermediate("blue not a CA", isCA: false)])
        let green = try f.cluster("green", roots: [root], chain: [root.intermediate("green intermediate")])
        let report = try await verify(blue, green)
        #expect(!report.trusted)
        let chain = try #require(report.check("chain.blue-verifies-against-green"))
        #expect(chain.status == .fail)
        #expect(chain.detail.contains("not a CA certificate"))
        #expect(report.check("chain.green-verifies-against-blue")?.status == .pass)
    }

    @Test("a leaf under a non-CA 'intermediate' in the chain fails in OpenSSL's verifier")
    func nonCAInsideChain() async throws {
        let f = try TrustFixture()
        let root = try TrustPKI.root("Istio Root CA")
        let notCA = try root.intermediate("not a CA", isCA: false)
        let sub = try notCA.intermediate("sub CA")
        let blue = try f.cluster("blue", roots: [root], chain: [sub, notCA])
        let green = try f.cluster("green", roots: [root])
        let report = try await verify(blue, green)
        #expect(!report.trusted)
        let chain = try #require(report.check("chain.blue-verifies-against-green"))
        #expect(chain.status == .fail)
        #expect(chain.detail.contains("invalid CA certificate"), "\(chain.detail)")
    }

    @Test("trust domains that differ fail")
    func trustDomainsDiffer() async throws {
        let f = try TrustFixture()
        let root = try TrustPKI.root("Istio Root CA")
        let blue = try f.cluster("blue", trustDomain: "cluster.local", roots: [root], chain: [root.intermediate("blue intermediate")])
        let green = try f.cluster("green", trustDomain: "green.example", roots: [root], chain: [root.intermediate("green intermediate")])
        let report = try await verify(blue, green)
        #expect(!report.trusted)
        let domain = try #require(report.check("trustDomain"))
        #expect(domain.status == .fail)
        #expect(domain.detail.contains("green.example"))
        #expect(report.checks.filter { $0.status == .fail }.map(\.name) == ["trustDomain"])
    }

    @Test("without certChain, the shared self-signed root issues workloads: trusted")
    func noChainSharedRoot() async throws {
        let f = try TrustFixture()
        let root = try TrustPKI.root("Istio Root CA")
        let report = try await verify(f.cluster("blue", roots: [root]), f.cluster("green", roots: [root]))
        #expect(report.trusted)
        #expect(report.check("chain.blue-verifies-against-green")?.status == .pass)
        #expect(report.check("validity.blue.chain") == nil)
    }

    @Test("the JSON carries the contract's fields: trusted, checks, clusters.roots with sha256, subject, ISO 8601 notAfter")
    func jsonContract() async throws {
        let f = try TrustFixture()
        let root = try TrustPKI.root("Istio Root CA")
        let report = try await verify(f.cluster("blue", roots: [root], chain: [root.intermediate("i")]), f.cluster("green", roots: [root]))
        let data = try JSONEncoder().encode(report)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["trusted"] as? Bool == true)
        let checks = try #require(object["checks"] as? [[String: Any]])
        #expect(checks.allSatisfy { $0["name"] is String && $0["status"] is String && $0["detail"] is String })
        let clusters = try #require(object["clusters"] as? [String: [String: Any]])
        let roots = try #require(clusters["blue"]?["roots"] as? [[String: Any]])
        let first = try #require(roots.first)
        let sha = try #require(first["sha256"] as? String)
        #expect(sha.count == 64 && sha.allSatisfy(\.isHexDigit))
        #expect(first["subject"] as? String == "CN=Istio Root CA,O=cluster.local")
        let notAfter = try #require(first["notAfter"] as? String)
        #expect((try? Date(notAfter, strategy: .iso8601)) != nil)
        #expect(try JSONDecoder().decode(TrustReport.self, from: data) == report)
    }
}
