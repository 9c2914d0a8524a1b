import Foundation
import SwitchoverCore
import SwitchoverTestKit
import SwitchoverTrust

/// A temporary folder of PEM files and the Cluster values pointing at them.
final class TrustFixture {
    let directory: URL

    init() throws { directory = try TemporaryDirectory.make("trust") }
    deinit { try? FileManager.default.removeItem(at: directory) }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    @discardableResult
    func write(_ name: String, _ certificates: [IssuedCertificate]) throws -> String {
        try IssuedCertificate.writeBundle(certificates, to: directory.appendingPathComponent(name))
        return path(name)
    }

    @discardableResult
    func write(_ name: String, text: String) throws -> String {
        try text.write(toFile: path(name), atomically: true, encoding: .utf8)
        return path(name)
    }

    @discardableResult
    func write(_ name: String, data: Data) throws -> String {
        try data.write(to: directory.appendingPathComponent(name))
        return path(name)
    }

    func cluster(_ name: String, trustDomain: String = "cluster.local", roots: [IssuedCertificate],
                 chain: [IssuedCertificate]? = nil, probe: String? = nil) throws -> Cluster {
        let rootsPath = try write("\(name)-roots.pem", roots)
        let chainPath = try chain.map { try write("\(name)-chain.pem", $0) }
        return Self.cluster(name, trust: TrustSpec(trustDomain: trustDomain, rootCerts: rootsPath, certChain: chainPath, probe: probe))
    }

    static func cluster(_ name: String, trust: TrustSpec) -> Cluster {
        Cluster(name: name, istio: IstioSpec(version: "1.27.4", revision: nil), trust: trust,
                loadBalancer: ClusterLoadBalancerSpec(servers: ["\(name)-1"]), health: nil,
                location: SourceLocation(file: "\(name).yaml", line: 1, column: 1))
    }
}

let day: TimeInterval = 86_400

func verify(_ a: Cluster, _ b: Cluster, probe: Bool = false, options: ProbeOptions = ProbeOptions()) async throws -> TrustReport {
    try await verifyTrust(from: a, to: b, horizon: .seconds(30 * 86_400), probe: probe, now: Date(), probeOptions: options)
}
