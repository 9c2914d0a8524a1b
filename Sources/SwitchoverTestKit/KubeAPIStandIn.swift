import Foundation

/// STAND-IN for a Kubernetes API server, which cannot run on this machine (none is packaged in
/// Debian or PyPI): a real nginx serving HTTPS on 127.0.0.1 with a certificate from its own test
/// CA, verifying client certificates against a client CA (`ssl_verify_client optional`) or
/// accepting one bearer token, and answering GETs of named objects with bodies in the Kubernetes
/// API's exact shapes (`kind`, `apiVersion`, `metadata.resourceVersion`, `data`), with Status
/// objects for 401, 403 and 404. The TLS, the authentication and the client's parsing are real;
/// only the API server's storage is files written by the test (`put`).
public final class KubeAPIStandIn: Sendable {
    public let port: Int
    public let directory: URL
    /// The CA that signed the server's certificate (the kubeconfig's certificate-authority).
    public let serverCA: TestCertificate
    /// A client certificate the server accepts, and the CA it verifies clients against.
    public let client: TestCertificate
    public let clientCA: TestCertificate
    /// The bearer token the server accepts.
    public let token: String
    private let nginx: NginxServer

    public var server: String { "https://127.0.0.1:\(port)" }

    public static func start(token: String, in parent: URL? = nil) async throws -> KubeAPIStandIn {
        let directory = try parent.map { p -> URL in
            let d = p.appendingPathComponent("kube-api-\(UUID().uuidString.prefix(6))")
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            return d
        } ?? TemporaryDirectory.make("kube-api")
        let pki = try TestPKI(directory: directory.appendingPathComponent("pki"))
        let serverCA = try await pki.makeRoot(name: "kube-ca")
        let serverCert = try await pki.makeLeaf(name: "kube-apiserver", sans: ["127.0.0.1", "localhost"], issuer: serverCA, usage: .server)
        let clientCA = try await pki.makeRoot(name: "kube-client-ca")
        let client = try await pki.makeLeaf(name: "kube-admin", sans: ["kube-admin"], issuer: clientCA, usage: .client)
        // nginx workers (www-data) read the key and the objects: open the folders up.
        for path in [pki.directory.path, directory.path] { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path) }
        for file in try FileManager.default.contentsOfDirectory(atPath: pki.directory.path) {
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: pki.directory.appendingPathComponent(file).path)
        }
        let objects = directory.appendingPathComponent("objects")
        try FileManager.default.createDirectory(at: objects, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        func status(_ code: Int, _ reason: String, _ message: String) -> String {
            #"'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"\#(message)","reason":"\#(reason)","code":\#(code)}'"#
        }
        let body = """
            ssl_certificate \(serverCert.certificateFile.path);
            ssl_certificate_key \(serverCert.keyFile.path);
            ssl_client_certificate \(clientCA.certificateFile.path);
            ssl_verify_client optional;
            default_type application/json;
            root \(objects.path);
            set $authorized 0;
            if ($ssl_client_verify = SUCCESS) { set $authorized 1; }
            if ($http_authorization = "Bearer \(token)") { set $authorized 1; }
            if ($authorized = 0) { return 401 \(status(401, "Unauthorized", "Unauthorized")); }
            location /api/v1/namespaces/kube-system/ {
                return 403 \(status(403, "Forbidden", "secrets is forbidden: User cannot get resource in the namespace kube-system"));
            }
            location / {
                # A list (`…/deployments`) is the folder's index.json; query parameters (a
                # labelSelector) are ignored: the client filters what it gets.
                try_files $uri $uri/index.json @missing;
            }
            location @missing {
                return 404 \(status(404, "NotFound", "the object is not found"));
            }
            """
        let nginx = try await NginxServer.start(name: "kube-api", body: body, directory: directory, listenOptions: "ssl")
        return KubeAPIStandIn(port: nginx.port, directory: directory, serverCA: serverCA, client: client, clientCA: clientCA,
                              token: token, nginx: nginx)
    }

    private init(port: Int, directory: URL, serverCA: TestCertificate, client: TestCertificate, clientCA: TestCertificate,
                 token: String, nginx: NginxServer) {
        self.port = port
        self.directory = directory
        self.serverCA = serverCA
        self.client = client
        self.clientCA = clientCA
        self.token = token
        self.nginx = nginx
    }

    /// Stores a ConfigMap (`data` as given) or a Secret (`data` base64-encoded, as the API
    /// serves it; `raw` values written as they are, to serve a broken one).
    public func putConfigMap(namespace: String, name: String, data: [String: String], resourceVersion: String = "1") throws {
        try put(path: "api/v1/namespaces/\(namespace)/configmaps/\(name)",
                object: ["kind": "ConfigMap", "apiVersion": "v1",
                         "metadata": ["name": name, "namespace": namespace, "resourceVersion": resourceVersion], "data": data])
    }

    public func putSecret(namespace: String, name: String, data: [String: String], raw: Bool = false, resourceVersion: String = "1") throws {
        let encoded = raw ? data : data.mapValues { Data($0.utf8).base64EncodedString() }
        try put(path: "api/v1/namespaces/\(namespace)/secrets/\(name)",
                object: ["kind": "Secret", "apiVersion": "v1", "type": "Opaque",
                         "metadata": ["name": name, "namespace": namespace, "resourceVersion": resourceVersion], "data": encoded])
    }

    /// Stores istiod's Deployment as Istio installs it (labels `app: istiod`, `istio.io/rev`;
    /// container `discovery` running `image`), and the namespace's Deployment list with it.
    public func putDeployment(namespace: String, name: String, image: String, revision: String? = nil) throws {
        let object: [String: Any] = [
            "kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": ["name": name, "namespace": namespace, "resourceVersion": "7",
                         "labels": ["app": "istiod", "istio.io/rev": revision ?? "default"]],
            "spec": ["template": ["spec": ["containers": [["name": "discovery", "image": image]]]]],
        ]
        try put(path: "apis/apps/v1/namespaces/\(namespace)/deployments/\(name)", object: object)
        let listFile = directory.appendingPathComponent("objects/apis/apps/v1/namespaces/\(namespace)/deployments/index.json")
        var items = ((try? JSONSerialization.jsonObject(with: Data(contentsOf: listFile))) as? [String: Any])?["items"] as? [[String: Any]] ?? []
        items.removeAll { ($0["metadata"] as? [String: Any])?["name"] as? String == name }
        items.append(object)
        try put(path: "apis/apps/v1/namespaces/\(namespace)/deployments/index.json",
                object: ["kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": ["resourceVersion": "8"], "items": items])
    }

    private func put(path: String, object: [String: Any]) throws {
        let file = directory.appendingPathComponent("objects/\(path)")
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: file)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path)
    }

    public func stopInBackground() { nginx.stopInBackground() }
}
