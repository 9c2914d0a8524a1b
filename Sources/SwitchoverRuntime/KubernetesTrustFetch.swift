import Foundation
import Logging
import Synchronization
import SwitchoverCore
import SwitchoverKubernetes
import SwitchoverTrust

/// Reads the trust material a cluster document names in the cluster (`rootCerts: {configMap:
/// …}`, `certChain: {secret: …}`) through the Kubernetes API, with the kubeconfig kubectl would
/// use (`KUBECONFIG` or `~/.kube/config`) and the cluster's `spec.kubernetes.context`. Every
/// failure is bad input (exit 2) naming the cluster, the context and the object; no token or key
/// is ever in it.
public enum KubernetesTrustFetch {
    public static func make(environment: [String: String] = ProcessInfo.processInfo.environment,
                            logger: Logger) -> TrustObjectFetch {
        // One client per context for the whole check: its exec plugin (a cloud's token command,
        // a second or more each) runs once for the roots and the chain, not once per object.
        let clients = Clients(environment: environment, logger: logger)
        return { cluster, object in
            let where_ = "cluster \(cluster.name)"
            guard let access = cluster.kubernetes else {
                throw TrustError(.missingFile, file: "\(where_): \(object)", detail: "needs spec.kubernetes: {context: …} to be read")
            }
            let name = "\(where_) (context \(access.context)): \(object)"
            do {
                let client = try clients.client(access.context)
                let read = object.kind == .configMap
                    ? try await client.configMap(namespace: object.namespace, name: object.name)
                    : try await client.secret(namespace: object.namespace, name: object.name)
                guard let bytes = read.data[object.key] else {
                    let keys = read.data.keys.sorted()
                    throw TrustError(.missingFile, file: name,
                                     detail: "has no key \(object.key) (" + (keys.isEmpty ? "it has no data" : "its keys: \(keys.joined(separator: ", "))") + ")")
                }
                return FetchedTrustObject(bytes: [UInt8](bytes), record: TrustSourceRecord(
                    cluster: cluster.name, context: access.context, kind: object.kind.rawValue, namespace: object.namespace,
                    object: object.name, key: object.key, resourceVersion: read.resourceVersion))
            } catch let error as KubeError {
                throw TrustError(.unreadableFile, file: name, detail: "cannot be read: \(error.message)")
            }
        }
    }

    /// The check's clients, by context.
    final class Clients: Sendable {
        let environment: [String: String]
        let logger: Logger
        private let cache = Mutex<[String: KubernetesClient]>([:])

        init(environment: [String: String], logger: Logger) {
            self.environment = environment
            self.logger = logger
        }

        func client(_ context: String) throws(KubeError) -> KubernetesClient {
            if let known = cache.withLock({ $0[context] }) { return known }
            let config = try Kubeconfig.load(environment: environment)
            let made = KubernetesClient(endpoint: try config.endpoint(context: context), logger: logger)
            return cache.withLock { clients in
                if let raced = clients[context] { return raced }
                clients[context] = made
                return made
            }
        }
    }
}
