import Foundation
import Yams

/// Why a kubeconfig, a credential or an API call failed: always naming the cluster's context and
/// the object, never a token or a key.
public struct KubeError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case kubeconfig, unknownContext, insecure, credential, expiredCredential, unauthorized, forbidden, notFound,
             unreachable, badAnswer
    }
    public let code: Code
    public let message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}

/// A kubeconfig as `kubectl` reads it: `KUBECONFIG` (several files, `:`-separated, merged: the
/// first file to name a cluster, user or context wins, as does the first `current-context`) or
/// `~/.kube/config`. Paths inside a file are relative to that file.
public struct Kubeconfig: Sendable {
    public struct Cluster: Sendable, Hashable {
        public var server: String
        public var certificateAuthority: String?
        public var certificateAuthorityData: Data?
        public var insecureSkipTLSVerify: Bool
        /// The file it was read from, for messages.
        public var source: String
    }

    public struct ExecConfig: Sendable, Hashable {
        public var apiVersion: String
        public var command: String
        public var args: [String]
        public var env: [(name: String, value: String)]
        public static func == (a: ExecConfig, b: ExecConfig) -> Bool {
            a.apiVersion == b.apiVersion && a.command == b.command && a.args == b.args
                && a.env.map(\.name) == b.env.map(\.name) && a.env.map(\.value) == b.env.map(\.value)
        }
        public func hash(into hasher: inout Hasher) {
            hasher.combine(apiVersion)
            hasher.combine(command)
            hasher.combine(args)
        }
    }

    public struct User: Sendable, Hashable {
        public var clientCertificate: String?
        public var clientCertificateData: Data?
        public var clientKey: String?
        public var clientKeyData: Data?
        public var token: String?
        public var tokenFile: String?
        public var exec: ExecConfig?
        public var source: String
    }

    public struct Context: Sendable, Hashable {
        public var cluster: String
        public var user: String
        public var namespace: String?
        public var source: String
    }

    public var clusters: [String: Cluster] = [:]
    public var users: [String: User] = [:]
    public var contexts: [String: Context] = [:]
    public var currentContext: String?
    /// The files read, in order.
    public var files: [String] = []

    public init() {}

    /// The kubeconfig `kubectl` would read with `environment` (`KUBECONFIG`, `HOME`).
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment) throws(KubeError) -> Kubeconfig {
        let paths: [String]
        if let list = environment["KUBECONFIG"], !list.isEmpty {
            paths = list.split(separator: ":").map(String.init).filter { !$0.isEmpty }
        } else {
            paths = [(environment["HOME"] ?? NSHomeDirectory()) + "/.kube/config"]
        }
        var config = Kubeconfig()
        var read = 0
        for path in paths {
            // kubectl skips files of KUBECONFIG that do not exist; one given alone must exist.
            guard FileManager.default.fileExists(atPath: path) else { continue }
            try config.merge(file: path)
            read += 1
        }
        guard read > 0 else {
            throw KubeError(.kubeconfig, "no kubeconfig found: " + (environment["KUBECONFIG"].map { "KUBECONFIG=\($0) names no existing file" }
                                                                     ?? "\(paths[0]) does not exist and KUBECONFIG is not set"))
        }
        return config
    }

    /// Adds what `file` holds that is not already defined (the first definition wins).
    public mutating func merge(file path: String) throws(KubeError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KubeError(.kubeconfig, "kubeconfig \(path) cannot be read")
        }
        let object: Any?
        do {
            object = try Yams.load(yaml: String(decoding: data, as: UTF8.self))
        } catch {
            throw KubeError(.kubeconfig, "kubeconfig \(path) is not YAML: \(error)")
        }
        guard let root = object as? [String: Any] else {
            throw KubeError(.kubeconfig, "kubeconfig \(path) is not a mapping (kind: Config)")
        }
        files.append(path)
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        func resolve(_ p: String?) -> String? {
            guard let p, !p.isEmpty else { return nil }
            return p.hasPrefix("/") ? p : folder.appendingPathComponent(p).standardizedFileURL.path
        }
        func base64(_ value: Any?, _ what: String) throws(KubeError) -> Data? {
            guard let text = value as? String else { return nil }
            guard let data = Data(base64Encoded: text.filter { !$0.isWhitespace }) else {
                throw KubeError(.kubeconfig, "kubeconfig \(path): \(what) is not valid base64")
            }
            return data
        }
        func entries(_ key: String, _ inner: String) throws(KubeError) -> [(String, [String: Any])] {
            guard let list = root[key] else { return [] }
            guard let items = list as? [Any] else { throw KubeError(.kubeconfig, "kubeconfig \(path): '\(key)' is not a list") }
            var result: [(String, [String: Any])] = []
            for item in items {
                guard let entry = item as? [String: Any], let name = entry["name"] as? String else {
                    throw KubeError(.kubeconfig, "kubeconfig \(path): an entry of '\(key)' has no name")
                }
                result.append((name, entry[inner] as? [String: Any] ?? [:]))
            }
            return result
        }
        for (name, body) in try entries("clusters", "cluster") where clusters[name] == nil {
            guard let server = body["server"] as? String else {
                throw KubeError(.kubeconfig, "kubeconfig \(path): cluster '\(name)' has no server")
            }
            clusters[name] = Cluster(server: server, certificateAuthority: resolve(body["certificate-authority"] as? String),
                                     certificateAuthorityData: try base64(body["certificate-authority-data"], "cluster '\(name)' certificate-authority-data"),
                                     insecureSkipTLSVerify: body["insecure-skip-tls-verify"] as? Bool ?? false, source: path)
        }
        for (name, body) in try entries("users", "user") where users[name] == nil {
            var exec: ExecConfig?
            if let e = body["exec"] as? [String: Any] {
                guard let command = e["command"] as? String, let apiVersion = e["apiVersion"] as? String else {
                    throw KubeError(.kubeconfig, "kubeconfig \(path): user '\(name)': exec needs 'command' and 'apiVersion'")
                }
                let env = (e["env"] as? [[String: Any]] ?? []).compactMap { item -> (String, String)? in
                    guard let n = item["name"] as? String else { return nil }
                    return (n, item["value"] as? String ?? "")
                }
                // A command with a slash is a path relative to the file; a bare name is looked up in PATH.
                let resolved = command.contains("/") ? resolve(command) ?? command : command
                exec = ExecConfig(apiVersion: apiVersion, command: resolved, args: e["args"] as? [String] ?? [],
                                  env: env.map { (name: $0.0, value: $0.1) })
            }
            users[name] = User(clientCertificate: resolve(body["client-certificate"] as? String),
                               clientCertificateData: try base64(body["client-certificate-data"], "user '\(name)' client-certificate-data"),
                               clientKey: resolve(body["client-key"] as? String),
                               clientKeyData: try base64(body["client-key-data"], "user '\(name)' client-key-data"),
                               token: body["token"] as? String, tokenFile: resolve(body["tokenFile"] as? String),
                               exec: exec, source: path)
        }
        for (name, body) in try entries("contexts", "context") where contexts[name] == nil {
            guard let cluster = body["cluster"] as? String, let user = body["user"] as? String else {
                throw KubeError(.kubeconfig, "kubeconfig \(path): context '\(name)' needs 'cluster' and 'user'")
            }
            contexts[name] = Context(cluster: cluster, user: user, namespace: body["namespace"] as? String, source: path)
        }
        if currentContext == nil, let current = root["current-context"] as? String, !current.isEmpty { currentContext = current }
    }

    /// What it takes to reach the API server of context `name` (nil: the current context).
    public func endpoint(context name: String?) throws(KubeError) -> KubeEndpoint {
        guard let contextName = name ?? currentContext else {
            throw KubeError(.unknownContext, "no context given and the kubeconfig (\(files.joined(separator: ", "))) has no current-context")
        }
        guard let context = contexts[contextName] else {
            let known = contexts.keys.sorted()
            throw KubeError(.unknownContext, "context '\(contextName)' is not in the kubeconfig (\(files.joined(separator: ", "))); "
                            + (known.isEmpty ? "it defines none" : "it defines: \(known.joined(separator: ", "))"))
        }
        guard let cluster = clusters[context.cluster] else {
            throw KubeError(.kubeconfig, "context '\(contextName)' names cluster '\(context.cluster)', which the kubeconfig does not define")
        }
        guard let user = users[context.user] else {
            throw KubeError(.kubeconfig, "context '\(contextName)' names user '\(context.user)', which the kubeconfig does not define")
        }
        if cluster.insecureSkipTLSVerify {
            throw KubeError(.insecure, "context '\(contextName)': cluster '\(context.cluster)' (\(cluster.source)) sets insecure-skip-tls-verify: "
                            + "switchover always verifies the API server's certificate; give the cluster's CA (certificate-authority or -data) instead")
        }
        guard let url = URL(string: cluster.server), url.scheme == "https", url.host != nil else {
            throw KubeError(.kubeconfig, "context '\(contextName)': cluster '\(context.cluster)' has server \(cluster.server): an https:// URL is needed")
        }
        return KubeEndpoint(context: contextName, server: cluster.server, cluster: cluster, user: user)
    }
}

/// One context resolved: its server, its cluster's trust and its user's credentials.
public struct KubeEndpoint: Sendable, Hashable {
    public var context: String
    public var server: String
    public var cluster: Kubeconfig.Cluster
    public var user: Kubeconfig.User
}
