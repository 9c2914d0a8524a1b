import Foundation
import Logging
import SwitchoverCore
import SwitchoverKubernetes

/// Istio's control-plane versions for the preflight: each cluster's, from its file or, with
/// `spec.kubernetes`, read from istiod in the cluster (the Deployment in `istio-system` labelled
/// `app=istiod` and `istio.io/rev=<revision>` (`default` without one), the tag of its `discovery`
/// container's image). A version written in the file
/// that differs from the cluster's is a failure naming both; green older than blue is a failure;
/// a jump of more than one minor version is a warning.
public enum IstioVersions {
    public static let namespace = "istio-system"

    /// The preflight's version checks: failures and warnings as sentences.
    public static func check(from: Cluster, to: Cluster, environment: [String: String] = ProcessInfo.processInfo.environment,
                             logger: Logger) async -> (failures: [String], warnings: [String]) {
        var failures: [String] = []
        async let a = version(of: from, environment: environment, logger: logger)
        async let b = version(of: to, environment: environment, logger: logger)
        var versions: [IstioVersion?] = []
        for result in [await a, await b] {
            switch result {
            case .success(let version): versions.append(version)
            case .failure(let why):
                failures.append(why.message)
                versions.append(nil)
            }
        }
        guard let blue = versions[0], let green = versions[1] else { return (failures, []) }
        let judged = IstioVersion.judge(from: from.name, blue, to: to.name, green)
        return (failures + (judged.failure.map { [$0] } ?? []), judged.warning.map { [$0] } ?? [])
    }

    struct Failure: Error { let message: String }

    /// The cluster's version: the cluster's istiod when it can be read (checked against a
    /// written one), else the file's.
    static func version(of cluster: Cluster, environment: [String: String], logger: Logger) async -> Result<IstioVersion?, Failure> {
        let written = cluster.istio.fromCluster ? nil : IstioVersion(cluster.istio.version)
        guard let access = cluster.kubernetes else { return .success(written) }
        let revision = cluster.istio.revision ?? "default"
        let selector = "app=istiod,istio.io/rev=\(revision)"
        var who = "istio: cluster \(cluster.name) (context \(access.context)): istiod (Deployments in \(namespace) labelled \(selector))"
        do {
            let config = try Kubeconfig.load(environment: environment)
            let client = KubernetesClient(endpoint: try config.endpoint(context: access.context), logger: logger)
            let query = selector.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? selector
            let list = try await client.get("/apis/apps/v1/namespaces/\(namespace)/deployments?labelSelector=\(query)",
                                            what: "Deployments in \(namespace) labelled \(selector)")
            // Filtered here too: what the server did with the selector is not taken on trust.
            let matching = (list["items"] as? [[String: Any]] ?? []).filter { item in
                let labels = (item["metadata"] as? [String: Any])?["labels"] as? [String: String] ?? [:]
                return labels["app"] == "istiod" && (labels["istio.io/rev"] ?? "default") == revision
            }
            guard let object = matching.first else {
                return .failure(Failure(message: "\(who): none found; is istiod of revision \(revision) installed in \(namespace)?"))
            }
            let name = (object["metadata"] as? [String: Any])?["name"] as? String ?? "?"
            who = "istio: cluster \(cluster.name) (context \(access.context)): Deployment \(namespace)/\(name)"
            let spec = ((object["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any]
            let containers = spec?["containers"] as? [[String: Any]] ?? []
            guard let image = (containers.first { $0["name"] as? String == "discovery" } ?? containers.first)?["image"] as? String else {
                return .failure(Failure(message: "\(who) has no container image"))
            }
            let lastPart = image.split(separator: "/").last.map(String.init) ?? image
            guard !image.contains("@"), let colon = lastPart.lastIndex(of: ":") else {
                return .failure(Failure(message: "\(who): image \(image) names no version tag (pinned by digest?); write spec.istio.version instead of auto"))
            }
            let tag = String(lastPart[lastPart.index(after: colon)...])
            guard let running = IstioVersion(tag) else {
                return .failure(Failure(message: "\(who): image tag \(tag) is not a version such as 1.27.4"))
            }
            if let written, written != running {
                return .failure(Failure(message: "\(who) runs Istio \(running) (image \(image)), and clusters/\(cluster.name)'s spec.istio.version says \(written): "
                                        + "which is it? correct the file, or write version: auto"))
            }
            return .success(running)
        } catch {
            return .failure(Failure(message: "\(who): \(error.message)"))
        }
    }
}
