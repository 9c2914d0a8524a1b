import Foundation
import SwitchoverTestKit
import Testing

/// `switchover trust` on clusters whose roots and chains are read from the cluster
/// (`rootCerts: {configMap: …}`, `certChain: {secret: …}`) through a kubeconfig, against
/// `KubeAPIStandIn` — a STAND-IN for a Kubernetes API server (nginx with TLS and a token check
/// serving ConfigMaps and Secrets in the API's shapes; none can run here). The verdicts must be
/// those of the same certificates given as files.
@Suite struct TrustFromClusterCLITests {
    /// Blue's and green's roots and chains, written both as files and into the stand-in
    /// (namespace `<cluster>-istio`), with two contexts on it, and both configurations.
    final class World {
        let directory: URL
        let api: KubeAPIStandIn
        let kubeconfig: String

        /// Runs of the exec plugin, when the kubeconfig's user is one (`execPlugin`).
        let pluginRuns: URL

        init(blueRoots: [IssuedCertificate], blueChain: [IssuedCertificate], greenRoots: [IssuedCertificate],
             greenChain: [IssuedCertificate], execPlugin: Bool = false) async throws {
            directory = try TemporaryDirectory.make("trust-kube")
            api = try await KubeAPIStandIn.start(token: "tok-\(UUID().uuidString.prefix(10))", in: directory)
            let fm = FileManager.default
            for folder in ["files/clusters", "kube/clusters", "policies", "pki"] {
                try fm.createDirectory(at: directory.appendingPathComponent(folder), withIntermediateDirectories: true)
            }
            let material = ["blue": (blueRoots, blueChain), "green": (greenRoots, greenChain)]
            for (name, (roots, chain)) in material {
                try IssuedCertificate.writeBundle(roots, to: directory.appendingPathComponent("pki/\(name)-root.pem"))
                try IssuedCertificate.writeBundle(chain, to: directory.appendingPathComponent("pki/\(name)-chain.pem"))
                try api.putConfigMap(namespace: "\(name)-istio", name: "istio-ca-root-cert",
                                     data: ["root-cert.pem": roots.map(\.pem).joined()], resourceVersion: name == "blue" ? "101" : "202")
                try api.putSecret(namespace: "\(name)-istio", name: "cacerts", data: ["cert-chain.pem": chain.map(\.pem).joined()])
            }
            func document(_ name: String, trust: String, kubernetes: String = "") -> String {
                """
                apiVersion: switchover.dev/v1alpha1
                kind: Cluster
                metadata: {name: \(name)}
                spec:\(kubernetes)
                  istio: {version: "1.27.4"}
                  trust:
                    trustDomain: cluster.local
                \(trust)
                  loadBalancer: {servers: [\(name)-1]}

                """
            }
            for name in ["blue", "green"] {
                try Data(document(name, trust: "    rootCerts: ../../pki/\(name)-root.pem\n    certChain: ../../pki/\(name)-chain.pem").utf8)
                    .write(to: directory.appendingPathComponent("files/clusters/\(name).yaml"))
                try Data(document(name, trust: """
                        rootCerts: {configMap: {namespace: \(name)-istio, name: istio-ca-root-cert, key: root-cert.pem}}
                        certChain: {secret: {namespace: \(name)-istio, name: cacerts, key: cert-chain.pem}}
                    """, kubernetes: "\n  kubernetes: {context: \(name)-admin}").utf8)
                    .write(to: directory.appendingPathComponent("kube/clusters/\(name).yaml"))
            }
            kubeconfig = directory.appendingPathComponent("kubeconfig").path
            pluginRuns = directory.appendingPathComponent("plugin-runs")
            var user = "{token: \(api.token)}"
            if execPlugin {
                let plugin = directory.appendingPathComponent("token-plugin")
                try Data("""
                    #!/bin/sh
                    echo run >> \(pluginRuns.path)
                    echo '{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": {"token": "\(api.token)"}}'

                    """.utf8).write(to: plugin)
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: plugin.path)
                user = "{exec: {apiVersion: client.authentication.k8s.io/v1, command: \(plugin.path)}}"
            }
            try Data("""
                apiVersion: v1
                kind: Config
                clusters:
                - {name: stand-in, cluster: {server: "\(api.server)", certificate-authority: \(api.serverCA.certificateFile.path)}}
                users:
                - {name: reader, user: \(user)}
                contexts:
                - {name: blue-admin, context: {cluster: stand-in, user: reader}}
                - {name: green-admin, context: {cluster: stand-in, user: reader}}

                """.utf8).write(to: URL(fileURLWithPath: kubeconfig))
        }

        deinit {
            api.stopInBackground()
            try? FileManager.default.removeItem(at: directory)
        }

        func trust(_ form: String, _ extra: [String] = []) async throws -> (exitCode: Int32, stdout: String, stderr: String) {
            try await runSwitchover(["trust", "blue", "green", "--clusters", directory.appendingPathComponent("\(form)/clusters").path,
                                     "--policies", directory.appendingPathComponent("policies").path, "--output", "json"] + extra,
                                    cwd: directory, extraEnvironment: ["KUBECONFIG": kubeconfig])
        }

        /// Exit code, `trusted` and every check's status, from `--output json`.
        func verdict(_ form: String) async throws -> (Int32, Bool?, [String: String], [String: Any]) {
            let result = try await trust(form)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stderr)")
            let checks = (object["checks"] as? [[String: Any]] ?? []).reduce(into: [String: String]()) {
                $0[$1["name"] as? String ?? "?"] = $1["status"] as? String
            }
            return (result.exitCode, object["trusted"] as? Bool, checks, object)
        }
    }

    static func compare(_ world: World, expectExit: Int32) async throws -> [String: Any] {
        let (fileExit, fileTrusted, fileChecks, _) = try await world.verdict("files")
        let (kubeExit, kubeTrusted, kubeChecks, object) = try await world.verdict("kube")
        #expect(fileExit == expectExit && kubeExit == expectExit, "files \(fileExit), from the cluster \(kubeExit)")
        #expect(kubeTrusted == fileTrusted)
        #expect(kubeChecks == fileChecks)
        #expect(!kubeChecks.isEmpty)
        return object
    }

    @Test("shared root: trusted from ConfigMaps and Secrets as from files; the JSON says where each cluster's roots came from")
    func sharedRoot() async throws {
        let root = try TrustPKI.root("Istio Root CA")
        let world = try await World(blueRoots: [root], blueChain: [root.intermediate("blue intermediate")],
                                    greenRoots: [root], greenChain: [root.intermediate("green intermediate")])
        let object = try await Self.compare(world, expectExit: 0)
        let clusters = try #require(object["clusters"] as? [String: [String: Any]])
        let source = try #require(clusters["green"]?["rootsSource"] as? [String: Any])
        #expect(source["context"] as? String == "green-admin")
        #expect(source["namespace"] as? String == "green-istio")
        #expect(source["object"] as? String == "istio-ca-root-cert")
        #expect(source["kind"] as? String == "ConfigMap")
        #expect(source["resourceVersion"] as? String == "202")
        #expect((clusters["blue"]?["chainSource"] as? [String: Any])?["kind"] as? String == "Secret")
    }

    @Test("foreign root: not trusted from the cluster as from files (exit 1)")
    func foreignRoot() async throws {
        let blue = try TrustPKI.root("Istio Root CA")
        let green = try TrustPKI.root("Istio Root CA")
        let world = try await World(blueRoots: [blue], blueChain: [blue.intermediate("blue intermediate")],
                                    greenRoots: [green], greenChain: [green.intermediate("green intermediate")])
        _ = try await Self.compare(world, expectExit: 1)
    }

    @Test("root rotation (green trusts the old and the new root): the same verdict as from files")
    func rotation() async throws {
        let old = try TrustPKI.root("Istio Root CA")
        let new = try TrustPKI.root("Istio Root CA 2")
        let world = try await World(blueRoots: [old], blueChain: [old.intermediate("blue intermediate")],
                                    greenRoots: [old, new], greenChain: [old.intermediate("green intermediate")])
        let object = try await Self.compare(world, expectExit: 0)
        let checks = try #require(object["checks"] as? [[String: Any]])
        #expect(checks.contains { $0["name"] as? String == "roots.shared" && $0["status"] as? String == "warn" })
    }

    @Test("a ConfigMap without the key, or a context the kubeconfig lacks: exit 2 naming the cluster, the context and the object")
    func badInput() async throws {
        let root = try TrustPKI.root("Istio Root CA")
        let world = try await World(blueRoots: [root], blueChain: [root.intermediate("blue intermediate")],
                                    greenRoots: [root], greenChain: [root.intermediate("green intermediate")])
        try world.api.putConfigMap(namespace: "green-istio", name: "istio-ca-root-cert", data: ["ca.crt": root.pem])
        let missingKey = try await world.trust("kube")
        #expect(missingKey.exitCode == 2)
        #expect(missingKey.stderr.contains("cluster green (context green-admin): ConfigMap green-istio/istio-ca-root-cert key root-cert.pem"),
                "\(missingKey.stderr)")
        #expect(missingKey.stderr.contains("has no key root-cert.pem (its keys: ca.crt)"))
        #expect(!missingKey.stderr.contains(world.api.token))

        let blue = world.directory.appendingPathComponent("kube/clusters/blue.yaml")
        let text = try String(contentsOf: blue, encoding: .utf8).replacingOccurrences(of: "context: blue-admin", with: "context: blue-ops")
        try Data(text.utf8).write(to: blue)
        let unknown = try await world.trust("kube")
        #expect(unknown.exitCode == 2)
        #expect(unknown.stderr.contains("cluster blue (context blue-ops)") && unknown.stderr.contains("context 'blue-ops' is not in the kubeconfig"),
                "\(unknown.stderr)")
    }

    @Test("an exec plugin runs once per cluster for a check, not once per object read (roots and chain)")
    func execPluginOncePerContext() async throws {
        let root = try TrustPKI.root("Istio Root CA")
        let world = try await World(blueRoots: [root], blueChain: [root.intermediate("blue intermediate")],
                                    greenRoots: [root], greenChain: [root.intermediate("green intermediate")], execPlugin: true)
        let result = try await world.trust("kube")
        #expect(result.exitCode == 0, "\(result.stderr)")
        let runs = ((try? String(contentsOf: world.pluginRuns, encoding: .utf8)) ?? "").split(separator: "\n").count
        #expect(runs == 2, "the plugin ran \(runs) times for two contexts")
    }
}
