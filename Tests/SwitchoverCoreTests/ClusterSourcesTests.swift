import Foundation
import SwitchoverCore
import Testing

/// Cluster documents whose trust material is read from the cluster (issue 19):
/// `spec.kubernetes: {context}`, `rootCerts: {configMap: …}`, `certChain: {secret: …}`.
@Suite struct ClusterSourcesTests {
    static func cluster(_ spec: String) -> String {
        """
        apiVersion: switchover.dev/v1alpha1
        kind: Cluster
        metadata:
          name: blue
        spec:
        \(spec)
          istio:
            version: "1.27.4"
          loadBalancer:
            servers: [blue-1, blue-2]

        """
    }

    static func load(_ spec: String, version: String = "\"1.27.4\"") throws -> (Configuration, [Diagnostic], String) {
        let text = cluster(spec).replacingOccurrences(of: "version: \"1.27.4\"", with: "version: \(version)")
        let fixture = try ConfigFixture(clusters: ["blue.yaml": text, "green.yaml": ConfigFixture.defaultClusters["green.yaml"]!])
        let (configuration, problems) = fixture.load()
        fixture.remove()
        return (configuration, problems, text)
    }

    @Test("both forms load: a ConfigMap for the roots and a Secret for the chain, read with the context")
    func loads() throws {
        let (configuration, problems, _) = try Self.load("""
              kubernetes: {context: blue-admin}
              trust:
                trustDomain: cluster.local
                rootCerts: {configMap: {namespace: istio-system, name: istio-ca-root-cert, key: root-cert.pem}}
                certChain: {secret: {namespace: istio-system, name: cacerts, key: cert-chain.pem}}
            """)
        #expect(problems.isEmpty, "\(problems)")
        let blue = try #require(configuration.clusters.first { $0.name == "blue" })
        #expect(blue.kubernetes?.context == "blue-admin")
        #expect(blue.trust.rootCertsObject?.description == "ConfigMap istio-system/istio-ca-root-cert key root-cert.pem")
        #expect(blue.trust.certChainObject?.kind == .secret)
        #expect(blue.trust.rootCerts.isEmpty)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var spec: String
        var at: String
        var message: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "both a configMap and a secret",
             spec: "  kubernetes: {context: c}\n  trust:\n    trustDomain: cluster.local\n    rootCerts: {configMap: {namespace: a, name: b, key: c}, secret: {namespace: a, name: b, key: c}}",
             at: "{configMap", message: "'rootCerts' names both a configMap and a secret"),
        Case(name: "a ConfigMap without the cluster's context",
             spec: "  trust:\n    trustDomain: cluster.local\n    rootCerts: {configMap: {namespace: a, name: b, key: c}}",
             at: "{configMap", message: "add spec.kubernetes: {context: …}"),
        Case(name: "a ConfigMap without its key",
             spec: "  kubernetes: {context: c}\n  trust:\n    trustDomain: cluster.local\n    rootCerts: {configMap: {namespace: a, name: b}}",
             at: "{namespace", message: "missing required key 'key'"),
        Case(name: "an unknown source",
             spec: "  kubernetes: {context: c}\n  trust:\n    trustDomain: cluster.local\n    rootCerts: {configmap: {namespace: a, name: b, key: c}}",
             at: "configmap", message: "unknown key 'configmap'"),
        Case(name: "version: auto without the cluster's context",
             spec: "  trust:\n    trustDomain: cluster.local\n    rootCerts: ../pki/root.pem",
             at: "auto", message: "'version: auto' reads istiod's version from the cluster"),
        Case(name: "kubernetes without a context",
             spec: "  kubernetes: {}\n  trust:\n    trustDomain: cluster.local\n    rootCerts: {configMap: {namespace: a, name: b, key: c}}",
             at: "{}", message: "missing required key 'context' in spec.kubernetes"),
    ]

    @Test("a cluster document mixing the forms wrongly: one error at FILE:LINE:COL", arguments: cases)
    func errors(_ c: Case) throws {
        let (_, problems, text) = try Self.load(c.spec, version: c.name.hasPrefix("version: auto") ? "auto" : "\"1.27.4\"")
        let mine = problems.filter { $0.location.file.hasSuffix("blue.yaml") }
        #expect(mine.count == 1, "\(problems)")
        let problem = try #require(mine.first)
        #expect(problem.message.contains(c.message), "\(problem.message)")
        let offset = try #require(text.range(of: c.at)).lowerBound
        let before = text[..<offset]
        #expect(problem.location.line == before.filter { $0 == "\n" }.count + 1)
        #expect(problem.location.column == before.count - (before.lastIndex(of: "\n").map { before.distance(from: before.startIndex, to: $0) + 1 } ?? 0) + 1)
    }
}
