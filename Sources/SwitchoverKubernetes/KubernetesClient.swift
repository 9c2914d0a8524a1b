import Foundation
import Logging
import SwitchoverNet

/// A named object read from the API server: a ConfigMap's `data`, or a Secret's `data` decoded
/// from base64, with the `resourceVersion` that says which version was read.
public struct KubeObject: Sendable, Hashable {
    public var kind: String
    public var namespace: String
    public var name: String
    public var resourceVersion: String?
    public var data: [String: Data]
}

/// GETs from a Kubernetes API server over libcurl, authenticated as the kubeconfig's context
/// says: a client certificate (file or data, or from the exec plugin), or a bearer token (inline,
/// `tokenFile` read at every request as it may rotate, or from the exec plugin). TLS verification
/// is always on, against the cluster's CA (`certificate-authority` or `-data`) or the system's.
/// An exec credential the server refuses (401) is asked for again once, as kubectl does.
public final class KubernetesClient: Sendable {
    public let endpoint: KubeEndpoint
    let plugin: ExecCredentialPlugin?
    let logger: Logger
    let timeout: Duration

    public init(endpoint: KubeEndpoint, logger: Logger, timeout: Duration = .seconds(10)) {
        self.endpoint = endpoint
        self.plugin = endpoint.user.exec.map { ExecCredentialPlugin(config: $0, context: endpoint.context) }
        self.logger = logger
        self.timeout = timeout
    }

    public func configMap(namespace: String, name: String) async throws(KubeError) -> KubeObject {
        let object = try await get("/api/v1/namespaces/\(namespace)/configmaps/\(name)", what: "ConfigMap \(namespace)/\(name)")
        let data = (object["data"] as? [String: String] ?? [:]).mapValues { Data($0.utf8) }
        return KubeObject(kind: "ConfigMap", namespace: namespace, name: name, resourceVersion: Self.resourceVersion(object), data: data)
    }

    public func secret(namespace: String, name: String) async throws(KubeError) -> KubeObject {
        let what = "Secret \(namespace)/\(name)"
        let object = try await get("/api/v1/namespaces/\(namespace)/secrets/\(name)", what: what)
        var data: [String: Data] = [:]
        for (key, value) in object["data"] as? [String: String] ?? [:] {
            guard let decoded = Data(base64Encoded: value) else {
                throw KubeError(.badAnswer, "context '\(endpoint.context)': \(what): key \(key) is not valid base64")
            }
            data[key] = decoded
        }
        return KubeObject(kind: "Secret", namespace: namespace, name: name, resourceVersion: Self.resourceVersion(object), data: data)
    }

    static func resourceVersion(_ object: [String: Any]) -> String? {
        (object["metadata"] as? [String: Any])?["resourceVersion"] as? String
    }

    /// GET `path`, the answer as a JSON object; `what` names the object in errors.
    public func get(_ path: String, what: String) async throws(KubeError) -> [String: Any] {
        do {
            return try await attempt(path, what: what)
        } catch let error where error.code == .unauthorized && plugin != nil {
            plugin?.invalidate()
            return try await attempt(path, what: what)
        }
    }

    func attempt(_ path: String, what: String) async throws(KubeError) -> [String: Any] {
        let who = "context '\(endpoint.context)': \(what)"
        var tls = TLSConfiguration(caFile: endpoint.cluster.certificateAuthority, caPEM: endpoint.cluster.certificateAuthorityData)
        var headers = [HTTPHeader("Accept", "application/json")]
        let user = endpoint.user
        if let plugin {
            // The plugin is a process waited for: on a thread of its own, never the cooperative pool.
            let result: Result<KubeCredential, KubeError>
            do {
                result = try await BlockingExecutor.run { () -> Result<KubeCredential, KubeError> in
                    Result { () throws(KubeError) -> KubeCredential in try plugin.credential() }
                }
            } catch {
                throw KubeError(.credential, "\(who): exec plugin not run: \(error)")
            }
            let credential = try result.get()
            if let token = credential.token { headers.append(HTTPHeader("Authorization", "Bearer \(token)")) }
            tls.clientCertificatePEM = credential.clientCertificatePEM
            tls.clientKeyPEM = credential.clientKeyPEM
        } else {
            tls.clientCertificateFile = user.clientCertificate
            tls.clientCertificatePEM = user.clientCertificateData
            tls.clientKeyFile = user.clientKey
            tls.clientKeyPEM = user.clientKeyData
            if let token = user.token {
                headers.append(HTTPHeader("Authorization", "Bearer \(token)"))
            } else if let file = user.tokenFile {
                guard let data = FileManager.default.contents(atPath: file) else {
                    throw KubeError(.credential, "\(who): tokenFile \(file) cannot be read")
                }
                let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                headers.append(HTTPHeader("Authorization", "Bearer \(token)"))
            }
        }
        var server = endpoint.server
        while server.hasSuffix("/") { server.removeLast() }
        let client = HTTPClient(configuration: .init(tls: tls, connectTimeout: min(timeout, .seconds(5)), timeout: timeout,
                                                     maxResponseBytes: 8 << 20, maxIdleHandles: 1), logger: logger)
        let response: HTTPResponse
        do {
            response = try await client.execute(HTTPRequest(method: "GET", url: server + path, headers: headers))
        } catch let error as HTTPError {
            throw KubeError(.unreachable, "\(who): the API server \(server) did not answer: \(error.code)"
                            + (error.code == .tlsVerificationFailed ? " (its certificate does not verify against the cluster's CA)" : "")
                            + (error.code == .tlsHandshakeFailed ? " (the TLS handshake failed: a client certificate refused?)" : ""))
        } catch {
            throw KubeError(.unreachable, "\(who): the API server \(server) did not answer: \(error)")
        }
        let object = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any]
        // The API server explains a refusal in a Status object.
        let said = (object?["kind"] as? String == "Status" ? object?["message"] as? String : nil).map { ": \($0)" } ?? ""
        switch response.status {
        case 200:
            guard let object else { throw KubeError(.badAnswer, "\(who): the API server's answer is not a JSON object") }
            return object
        case 401:
            throw KubeError(.unauthorized, "\(who): 401 Unauthorized\(said): the credentials of context '\(endpoint.context)' were refused")
        case 403:
            throw KubeError(.forbidden, "\(who): 403 Forbidden\(said)")
        case 404:
            throw KubeError(.notFound, "\(who): 404 Not Found\(said)")
        default:
            throw KubeError(.badAnswer, "\(who): HTTP \(response.status)\(said)")
        }
    }
}
