import Foundation
import Logging
import SwitchoverCore
import SwitchoverRuntime
import SwitchoverTestKit
import Testing

/// Istio's versions in the preflight (issue 19): the ordering rule, and istiod's version read from
/// `KubeAPIStandIn` — a STAND-IN for a Kubernetes API server (nginx, TLS, a token check), serving
/// istiod's Deployment in the API's shape.
@Suite struct IstioVersionTests {
    @Test("green older than blue fails; more than one minor version is a warning; one is neither; suffixes are ignored")
    func judge() throws {
        let v = { (text: String) in IstioVersion(text)! }
        #expect(IstioVersion.judge(from: "blue", v("1.27.4"), to: "green", v("1.26.9")).failure?.contains("green's control plane (1.26.9) is older than blue's (1.27.4)") == true)
        #expect(IstioVersion.judge(from: "blue", v("1.26.1"), to: "green", v("1.28.0")).warning?.contains("jumps more than one minor version") == true)
        let one = IstioVersion.judge(from: "blue", v("1.27.4"), to: "green", v("1.28.0-distroless"))
        #expect(one.failure == nil && one.warning == nil)
        #expect(IstioVersion("1.28") == nil && IstioVersion("v1.28.0") == nil)
    }

    static func cluster(_ name: String, version: String, fromCluster: Bool = false, revision: String?, context: String?) -> Cluster {
        let here = SourceLocation(file: "clusters/\(name).yaml", line: 1, column: 1)
        var cluster = Cluster(name: name, istio: IstioSpec(version: version, revision: revision, fromCluster: fromCluster),
                              trust: TrustSpec(trustDomain: "cluster.local", rootCerts: "/dev/null", certChain: nil, probe: nil),
                              loadBalancer: ClusterLoadBalancerSpec(servers: ["\(name)-1"]), health: nil, location: here)
        cluster.kubernetes = context.map { KubernetesAccess(context: $0, location: here) }
        return cluster
    }

    @Test("versions read from istiod in each cluster: auto, a written one that disagrees (naming both), and green older than blue")
    func fromTheCluster() async throws {
        let folder = try TemporaryDirectory.make("istio-versions")
        let api = try await KubeAPIStandIn.start(token: "tok-\(UUID().uuidString.prefix(8))", in: folder)
        defer { api.stopInBackground() }
        try api.putDeployment(namespace: "istio-system", name: "istiod-1-27", image: "docker.io/istio/pilot:1.27.4", revision: "1-27")
        try api.putDeployment(namespace: "istio-system", name: "istiod", image: "registry.example:5000/istio/pilot:1.29.0-distroless")
        let kubeconfig = folder.appendingPathComponent("kubeconfig")
        try Data("""
            clusters: [{name: s, cluster: {server: "\(api.server)", certificate-authority: \(api.serverCA.certificateFile.path)}}]
            users: [{name: u, user: {token: \(api.token)}}]
            contexts: [{name: blue, context: {cluster: s, user: u}}, {name: green, context: {cluster: s, user: u}}]

            """.utf8).write(to: kubeconfig)
        let environment = ["KUBECONFIG": kubeconfig.path]
        let logger = Logger(label: "test")

        let blue = Self.cluster("blue", version: "", fromCluster: true, revision: "1-27", context: "blue")
        let green = Self.cluster("green", version: "", fromCluster: true, revision: nil, context: "green")
        let jump = await IstioVersions.check(from: blue, to: green, environment: environment, logger: logger)
        #expect(jump.failures.isEmpty, "\(jump.failures)")
        #expect(jump.warnings.first?.contains("blue 1.27.4 → green 1.29.0 jumps more than one minor version") == true, "\(jump.warnings)")

        let stale = Self.cluster("blue", version: "1.27.2", revision: "1-27", context: "blue")
        let wrong = await IstioVersions.check(from: stale, to: green, environment: environment, logger: logger)
        #expect(wrong.failures.first?.contains("cluster blue (context blue): Deployment istio-system/istiod-1-27 runs Istio 1.27.4") == true
                && wrong.failures.first?.contains("spec.istio.version says 1.27.2") == true, "\(wrong.failures)")

        let older = await IstioVersions.check(from: green, to: blue, environment: environment, logger: logger)
        #expect(older.failures.first?.contains("blue's control plane (1.27.4) is older than green's (1.29.0)") == true, "\(older.failures)")

        let missing = Self.cluster("green", version: "", fromCluster: true, revision: "1-30", context: "green")
        let absent = await IstioVersions.check(from: blue, to: missing, environment: environment, logger: logger)
        #expect(absent.failures.first?.contains("istiod (Deployments in istio-system labelled app=istiod,istio.io/rev=1-30): none found") == true,
                "\(absent.failures)")
    }
}

/// The version rule through a whole `run`, real HAProxy and nginx: green's Istio older than blue's
/// is a preflight failure, and nothing moves.
@Suite struct IstioVersionRunTests {
    @Test("green's control plane older than blue's: preflight refuses (exit 2) naming both versions; HAProxy untouched")
    func olderGreenRefused() async throws {
        let lab = try await CutoverLab("istio-older")
        defer { lab.stopAll() }
        let green = lab.folder.appendingPathComponent("clusters/green.yaml")
        let text = try String(contentsOf: green, encoding: .utf8)
        #expect(text.contains("1.28.0"))
        try Data(text.replacingOccurrences(of: "1.28.0", with: "1.26.3").utf8).write(to: green)
        let before = try await lab.liveWeights()
        let coordinator = try lab.startCoordinator()
        defer { coordinator.stopInBackground() }
        #expect(try await lab.waitForExit(coordinator) == 2)
        let log = coordinator.logTail(lines: 40)
        #expect(log.contains("green's control plane (1.26.3) is older than blue's (1.27.4)"), "\(log)")
        let after = try await lab.liveWeights()
        #expect(after.blue == before.blue && after.green == before.green)
    }
}
