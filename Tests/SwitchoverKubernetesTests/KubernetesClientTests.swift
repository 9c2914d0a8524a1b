import Foundation
import Logging
import SwitchoverKubernetes
import SwitchoverTestKit
import Testing

/// The Kubernetes client against `KubeAPIStandIn` — a STAND-IN for an API server (nginx with TLS
/// and client-certificate or token checks serving objects in the API's shapes; no Kubernetes API
/// server can run on this machine). Kubeconfigs are real files, exec plugins real executables.
@Suite struct KubernetesClientTests {
    let logger = Logger(label: "test.kube")

    /// A stand-in with the root ConfigMap in place, and a folder for kubeconfigs and plugins.
    static func world() async throws -> (KubeAPIStandIn, URL) {
        let folder = try TemporaryDirectory.make("kube")
        let api = try await KubeAPIStandIn.start(token: "t-\(UUID().uuidString.prefix(12))", in: folder)
        try api.putConfigMap(namespace: "istio-system", name: "istio-ca-root-cert",
                             data: ["root-cert.pem": "-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n"], resourceVersion: "4711")
        return (api, folder)
    }

    /// A kubeconfig with one cluster (the stand-in), context `ctx` and user `user` as `userYAML` says.
    static func kubeconfig(_ api: KubeAPIStandIn, in folder: URL, user userYAML: String, name: String = "config",
                           cluster clusterYAML: String? = nil) throws -> String {
        let text = """
            apiVersion: v1
            kind: Config
            clusters:
            - name: stand-in
              cluster:
            \(clusterYAML ?? "    server: \(api.server)\n    certificate-authority: \(api.serverCA.certificateFile.path)")
            users:
            - name: user
              user:
            \(userYAML)
            contexts:
            - name: ctx
              context: {cluster: stand-in, user: user}
            current-context: ctx

            """
        let file = folder.appendingPathComponent(name)
        try Data(text.utf8).write(to: file)
        return file.path
    }

    func client(_ path: String, context: String? = "ctx") throws(KubeError) -> KubernetesClient {
        let config = try Kubeconfig.load(environment: ["KUBECONFIG": path, "HOME": "/nonexistent"])
        return KubernetesClient(endpoint: try config.endpoint(context: context), logger: logger)
    }

    /// An exec credential plugin: a Python script printing `status` as an ExecCredential of
    /// `apiVersion`, counting its runs in `runs`.
    static func plugin(in folder: URL, apiVersion: String, status: String) throws -> (path: String, runs: URL) {
        let runs = folder.appendingPathComponent("plugin-runs-\(UUID().uuidString.prefix(4))")
        let script = folder.appendingPathComponent("plugin-\(UUID().uuidString.prefix(4)).py")
        try Data("""
            #!/usr/bin/env python3
            import json, os, sys
            info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
            assert info["kind"] == "ExecCredential" and info["apiVersion"] == "\(apiVersion)", info
            with open("\(runs.path)", "a") as f: f.write(" ".join(sys.argv[1:]) + "|" + os.environ.get("PLUGIN_MODE", "") + "\\n")
            status = json.loads(r'''\(status)''')
            print(json.dumps({"apiVersion": "\(apiVersion)", "kind": "ExecCredential", "status": status}))

            """.utf8).write(to: script)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        return (script.path, runs)
    }

    static func runs(_ file: URL) -> Int {
        ((try? String(contentsOf: file, encoding: .utf8)) ?? "").split(separator: "\n").count
    }

    static func timestamp(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec)
    }

    @Test("client certificate and key files: the ConfigMap with its resourceVersion")
    func clientCertificateFiles() async throws {
        let (api, folder) = try await Self.world()
        defer { api.stopInBackground() }
        let path = try Self.kubeconfig(api, in: folder, user: "    client-certificate: \(api.client.certificateFile.path)\n    client-key: \(api.client.keyFile.path)")
        let object = try await client(path).configMap(namespace: "istio-system", name: "istio-ca-root-cert")
        #expect(object.resourceVersion == "4711")
        #expect(String(decoding: object.data["root-cert.pem"] ?? Data(), as: UTF8.self).contains("BEGIN CERTIFICATE"))
    }

    @Test("client certificate and key as -data (base64 in the kubeconfig, never written to a file), CA as -data too")
    func clientCertificateData() async throws {
        let (api, folder) = try await Self.world()
        defer { api.stopInBackground() }
        func b64(_ url: URL) throws -> String { try Data(contentsOf: url).base64EncodedString() }
        let path = try Self.kubeconfig(api, in: folder,
                                       user: "    client-certificate-data: \(try b64(api.client.certificateFile))\n    client-key-data: \(try b64(api.client.keyFile))",
                                       cluster: "    server: \(api.server)\n    certificate-authority-data: \(try b64(api.serverCA.certificateFile))")
        let object = try await client(path).configMap(namespace: "istio-system", name: "istio-ca-root-cert")
        #expect(object.resourceVersion == "4711")
    }

    @Test("a bearer token, inline and from tokenFile (read again at every request: a rotated token is used)")
    func tokens() async throws {
        let (api, folder) = try await Self.world()
        defer { api.stopInBackground() }
        let inline = try Self.kubeconfig(api, in: folder, user: "    token: \(api.token)", name: "inline")
        #expect(try await client(inline).configMap(namespace: "istio-system", name: "istio-ca-root-cert").resourceVersion == "4711")
        let tokenFile = folder.appendingPathComponent("token")
        try Data("stale-token\n".utf8).write(to: tokenFile)
        let fromFile = try Self.kubeconfig(api, in: folder, user: "    tokenFile: token", name: "file")
        let kube = try client(fromFile)
        await #expect(throws: KubeError.self) { _ = try await kube.configMap(namespace: "istio-system", name: "istio-ca-root-cert") }
        try Data((api.token + "\n").utf8).write(to: tokenFile)
        #expect(try await kube.configMap(namespace: "istio-system", name: "istio-ca-root-cert").resourceVersion == "4711")
    }

    @Test("an exec plugin (v1) giving a token: run once, its credential cached until it expires")
    func execV1Token() async throws {
        let (api, folder) = try await Self.world()
        defer { api.stopInBackground() }
        let future = Self.timestamp(Date().addingTimeInterval(3600))
        let plugin = try Self.plugin(in: folder, apiVersion: "client.authentication.k8s.io/v1",
                                     status: #"{"token": "\#(api.token)", "expirationTimestamp": "\#(future)"}"#)
        let path = try Self.kubeconfig(api, in: folder, user: """
                exec:
                  apiVersion: client.authentication.k8s.io/v1
                  command: \(plugin.path)
                  interactiveMode: Never
            """)
        let kube = try client(path)
        for _ in 0..<3 { _ = try await kube.configMap(namespace: "istio-system", name: "istio-ca-root-cert") }
        #expect(Self.runs(plugin.runs) == 1)
    }

    @Test("an exec plugin (v1beta1) giving a client certificate and key")
    func execV1beta1Certificate() async throws {
        let (api, folder) = try await Self.world()
        defer { api.stopInBackground() }
        let cert = try String(contentsOf: api.client.certificateFile, encoding: .utf8)
        let key = try String(contentsOf: api.client.keyFile, encoding: .utf8)
        func json(_ s: String) throws -> String { String(decoding: try JSONSerialization.data(withJSONObject: [s], options: []), as: UTF8.self).dropFirst().dropLast().description }
        let plugin = try Self.plugin(in: folder, apiVersion: "client.authentication.k8s.io/v1beta1",
                                     status: #"{"clientCertificateData": \#(try json(cert)), "clientKeyData": \#(try json(key))}"#)
        let path = try Self.kubeconfig(api, in: folder, user: """
                exec:
                  apiVersion: client.authentication.k8s.io/v1beta1
                  command: \(plugin.path)
                  args: [get-credentials, --cluster, blue]
                  env: [{name: PLUGIN_MODE, value: test}]
            """)
        #expect(try await client(path).configMap(namespace: "istio-system", name: "istio-ca-root-cert").resourceVersion == "4711")
        // Its args and env, as the kubeconfig gives them.
        #expect((try? String(contentsOf: plugin.runs, encoding: .utf8)) == "get-credentials --cluster blue|test\n")
    }

    @Test("an exec credential about to expire is asked for again; one already expired is an error saying so")
    func execExpiry() async throws {
        let (api, folder) = try await Self.world()
        defer { api.stopInBackground() }
        let soon = Self.timestamp(Date().addingTimeInterval(5))
        let refreshing = try Self.plugin(in: folder, apiVersion: "client.authentication.k8s.io/v1",
                                         status: #"{"token": "\#(api.token)", "expirationTimestamp": "\#(soon)"}"#)
        let path = try Self.kubeconfig(api, in: folder, user: "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: \(refreshing.path)",
                                       name: "soon")
        let kube = try client(path)
        for _ in 0..<2 { _ = try await kube.configMap(namespace: "istio-system", name: "istio-ca-root-cert") }
        #expect(Self.runs(refreshing.runs) == 2, "a credential with under 10 s left is not used again")

        let past = Self.timestamp(Date().addingTimeInterval(-60))
        let expired = try Self.plugin(in: folder, apiVersion: "client.authentication.k8s.io/v1",
                                      status: #"{"token": "\#(api.token)", "expirationTimestamp": "\#(past)"}"#)
        let stale = try Self.kubeconfig(api, in: folder, user: "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: \(expired.path)",
                                        name: "expired")
        do {
            _ = try await client(stale).configMap(namespace: "istio-system", name: "istio-ca-root-cert")
            Issue.record("an expired credential was used")
        } catch {
            #expect(error.code == .expiredCredential)
            #expect(error.message.contains("context 'ctx'") && error.message.contains("expired at \(past)"), "\(error)")
            #expect(!error.message.contains(api.token))
        }
    }

    @Test("a wrong token is 401 naming the context and the object, never the token; 403 and 404 carry the server's Status message")
    func refusals() async throws {
        let (api, folder) = try await Self.world()
        defer { api.stopInBackground() }
        let wrong = try Self.kubeconfig(api, in: folder, user: "    token: not-the-token-\(UUID().uuidString.prefix(4))", name: "wrong")
        do {
            _ = try await client(wrong).configMap(namespace: "istio-system", name: "istio-ca-root-cert")
            Issue.record("a wrong token was accepted")
        } catch {
            #expect(error.code == .unauthorized)
            #expect(error.message.contains("context 'ctx': ConfigMap istio-system/istio-ca-root-cert: 401 Unauthorized"), "\(error)")
            #expect(!error.message.contains("not-the-token"))
        }
        let good = try Self.kubeconfig(api, in: folder, user: "    token: \(api.token)", name: "good")
        let kube = try client(good)
        do {
            _ = try await kube.secret(namespace: "kube-system", name: "cacerts")
            Issue.record("403 not reported")
        } catch {
            #expect(error.code == .forbidden && error.message.contains("secrets is forbidden"), "\(error)")
        }
        do {
            _ = try await kube.configMap(namespace: "istio-system", name: "missing")
            Issue.record("404 not reported")
        } catch {
            #expect(error.code == .notFound && error.message.contains("ConfigMap istio-system/missing: 404 Not Found: the object is not found"), "\(error)")
        }
        try api.putSecret(namespace: "istio-system", name: "cacerts", data: ["cert-chain.pem": "%%% not base64 %%%"], raw: true)
        do {
            _ = try await kube.secret(namespace: "istio-system", name: "cacerts")
            Issue.record("bad base64 not reported")
        } catch {
            #expect(error.code == .badAnswer && error.message.contains("Secret istio-system/cacerts: key cert-chain.pem is not valid base64"), "\(error)")
        }
        try api.putSecret(namespace: "istio-system", name: "cacerts", data: ["cert-chain.pem": "PEM"])
        #expect(try await kube.secret(namespace: "istio-system", name: "cacerts").data["cert-chain.pem"] == Data("PEM".utf8))
    }

    @Test("an API server whose certificate does not verify against the cluster's CA is refused (TLS verification always on)")
    func wrongCA() async throws {
        let (api, folder) = try await Self.world()
        defer { api.stopInBackground() }
        let path = try Self.kubeconfig(api, in: folder, user: "    token: \(api.token)",
                                       cluster: "    server: \(api.server)\n    certificate-authority: \(api.clientCA.certificateFile.path)")
        do {
            _ = try await client(path).configMap(namespace: "istio-system", name: "istio-ca-root-cert")
            Issue.record("an unverified server was trusted")
        } catch {
            #expect(error.code == .unreachable && error.message.contains("does not verify"), "\(error)")
        }
    }
}

/// Kubeconfig files as kubectl reads them.
@Suite struct KubeconfigTests {
    static func write(_ text: String, _ name: String, in folder: URL) throws -> String {
        let url = folder.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    @Test("KUBECONFIG merges its files: the first to name a cluster, user or context wins, and the first current-context; relative paths are the file's")
    func merging() throws {
        let folder = try TemporaryDirectory.make("kubeconfig")
        let first = try Self.write("""
            clusters:
            - {name: blue, cluster: {server: "https://blue:6443", certificate-authority: ca/blue.pem}}
            users:
            - {name: admin, user: {token: first}}
            contexts:
            - {name: blue-admin, context: {cluster: blue, user: admin}}
            current-context: blue-admin
            """, "a/config", in: folder)
        let second = try Self.write("""
            clusters:
            - {name: blue, cluster: {server: "https://other:6443"}}
            - {name: green, cluster: {server: "https://green:6443"}}
            users:
            - {name: admin, user: {token: second}}
            contexts:
            - {name: green-admin, context: {cluster: green, user: admin, namespace: istio-system}}
            current-context: green-admin
            """, "b/config", in: folder)
        let config = try Kubeconfig.load(environment: ["KUBECONFIG": "\(first):\(folder.path)/missing:\(second)"])
        #expect(config.currentContext == "blue-admin")
        let blue = try config.endpoint(context: nil)
        #expect(blue.server == "https://blue:6443")
        #expect(blue.cluster.certificateAuthority == folder.appendingPathComponent("a/ca/blue.pem").path)
        #expect(blue.user.token == "first")
        let green = try config.endpoint(context: "green-admin")
        #expect(green.server == "https://green:6443" && green.user.token == "first")
        #expect(throws: KubeError.self) { try config.endpoint(context: "nope") }
        do { _ = try config.endpoint(context: "nope") } catch {
            #expect(error.code == .unknownContext && error.message.contains("it defines: blue-admin, green-admin"), "\(error)")
        }
    }

    @Test("insecure-skip-tls-verify is refused; a server that is not https is refused; no kubeconfig at all says where it looked")
    func refusals() throws {
        let folder = try TemporaryDirectory.make("kubeconfig")
        let path = try Self.write("""
            clusters:
            - {name: c, cluster: {server: "https://c:6443", insecure-skip-tls-verify: true}}
            - {name: plain, cluster: {server: "http://c:8080"}}
            users: [{name: u, user: {token: x}}]
            contexts:
            - {name: skip, context: {cluster: c, user: u}}
            - {name: http, context: {cluster: plain, user: u}}
            """, "config", in: folder)
        let config = try Kubeconfig.load(environment: ["KUBECONFIG": path])
        do { _ = try config.endpoint(context: "skip") } catch {
            #expect(error.code == .insecure && error.message.contains("always verifies"), "\(error)")
        }
        do { _ = try config.endpoint(context: "http") } catch {
            #expect(error.message.contains("an https:// URL is needed"), "\(error)")
        }
        #expect(throws: KubeError.self) { try Kubeconfig.load(environment: ["HOME": folder.appendingPathComponent("nohome").path]) }
    }
}
