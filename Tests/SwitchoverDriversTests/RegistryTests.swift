import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverTestKit
import Testing

/// A driver that exists only in this test: a description and a decoder, with no load balancer
/// behind it (its `make` refuses). It is everything adding a driver takes besides the router
/// itself: this type, its settings, and one line in a registry. Modelled on a weighted DNS
/// record: weights 0–255, no drain state, nothing to close.
private struct TestDNSDriver: LoadBalancerDriver {
    var name: String { "testdns" }
    var translation: WeightTranslation { WeightTranslation(maxWeight: 255) }
    var capabilities: RouterCapabilities { [] }

    func decodeSection(_ section: ConfigValue) -> (any DriverSpec)? {
        guard let fields = section.mapping(context: "spec.loadBalancer.testdns", known: ["zone", "endpoint"]) else { return nil }
        let zone = fields.required("zone").flatMap { $0.nonEmptyString() }
        let endpoint = fields.required("endpoint").flatMap { $0.httpURL() }
        guard let zone, let endpoint else { return nil }
        return TestDNSSpec(zone: zone, endpoint: endpoint)
    }

    func make(_ settings: any DriverSpec, from: ClusterServers, to: ClusterServers, logger: Logger) throws
        -> (router: any WeightRouter, observer: (any TrafficObserver)?) {
        throw LoadBalancerError(.unsupported, driver: name, address: "-",
                                message: "test double: no router behind it (zone \((settings as? TestDNSSpec)?.zone ?? "?"))")
    }
}

private struct TestDNSSpec: DriverSpec {
    var zone: String
    var endpoint: URL
    var fingerprint: String { "zone=\(zone) endpoint=\(endpoint.absoluteString)" }
}

/// The standard drivers and one more line.
private let extended = DriverRegistry(DriverRegistry.standard.drivers + [TestDNSDriver()])

/// A configuration folder: clusters blue and green with one server each, and `policy` as
/// `policies/p.yaml`.
private struct Folder {
    let root: URL
    let policy: String

    init(policy: String) throws {
        root = try TemporaryDirectory.make("registry")
        self.policy = policy
        let fm = FileManager.default
        for folder in ["clusters", "policies", "pki"] {
            try fm.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        try Data("not read by the loader\n".utf8).write(to: root.appendingPathComponent("pki/root.pem"))
        for name in ["blue", "green"] {
            try Data("""
                apiVersion: switchover.dev/v1alpha1
                kind: Cluster
                metadata:
                  name: \(name)
                spec:
                  istio:
                    version: "1.27.4"
                  trust:
                    trustDomain: cluster.local
                    rootCerts: ../pki/root.pem
                  loadBalancer:
                    servers: [\(name)-1]

                """.utf8).write(to: root.appendingPathComponent("clusters/\(name).yaml"))
        }
        try Data(policy.utf8).write(to: root.appendingPathComponent("policies/p.yaml"))
    }

    var policyFile: String { root.appendingPathComponent("policies/p.yaml").path }

    func load(_ registry: DriverRegistry) -> (Configuration, [Diagnostic]) {
        ConfigLoader.load(clustersDirectory: root.appendingPathComponent("clusters").path,
                          policiesDirectory: root.appendingPathComponent("policies").path,
                          drivers: registry.descriptions)
    }

    /// `FILE:LINE:COL` of the first `marker` in the policy.
    func at(_ marker: String) throws -> String {
        let found = try #require(position(of: marker, in: policy))
        return "\(policyFile):\(found.line):\(found.column)"
    }

    func remove() { try? FileManager.default.removeItem(at: root) }
}

private func policy(_ loadBalancer: String, drain: String = "") -> String {
    """
    apiVersion: switchover.dev/v1alpha1
    kind: Policy
    metadata:
      name: p
    spec:
      loadBalancer:
    \(loadBalancer)
      steps: [50, 100]
      bake: 10s
    \(drain)
    """
}

private let testDNS = """
        driver: testdns
        testdns:
          zone: Z0123456789
          endpoint: http://127.0.0.1:5000
    """

@Suite struct RegistryTests {
    @Test("a driver added in one registry line has its section decoded, and plan takes its weight range from it")
    func anAddedDriverIsDecodedAndPlanned() throws {
        let folder = try Folder(policy: policy(testDNS))
        defer { folder.remove() }
        let (configuration, diagnostics) = folder.load(extended)
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let chosen = try #require(configuration.policy(named: "p"))
        #expect(chosen.loadBalancer.driverName == "testdns")
        #expect(chosen.loadBalancer.settings(as: TestDNSSpec.self)
                == TestDNSSpec(zone: "Z0123456789", endpoint: URL(string: "http://127.0.0.1:5000")!))
        #expect(chosen.loadBalancer.settings(as: HAProxySpec.self) == nil)
        #expect(PolicyFingerprint(chosen).fields["loadBalancer"] == "testdns zone=Z0123456789 endpoint=http://127.0.0.1:5000")

        let blue = try #require(configuration.cluster(named: "blue")), green = try #require(configuration.cluster(named: "green"))
        let plan = CutoverPlan(from: blue, to: green, policy: chosen)
        #expect(plan.driver == "testdns")
        #expect(plan.steps.map(\.weights) == [
            WeightAssignment(from: [ServerWeight(server: "blue-1", weight: 255)], to: [ServerWeight(server: "green-1", weight: 255)]),
            WeightAssignment(from: [ServerWeight(server: "blue-1", weight: 0)], to: [ServerWeight(server: "green-1", weight: 255)]),
        ], "255 is the test driver's range, not HAProxy's 256 nor Envoy's 10000")
        #expect(configuration.validatePair(from: "blue", to: "green", policy: "p").isEmpty)

        // The registry builds with the entry's own builder.
        let error = try #require(throws: LoadBalancerError.self) {
            try extended.make(policy: chosen, from: blue, to: green, logger: testLogger)
        }
        #expect(error.message == "test double: no router behind it (zone Z0123456789)")
    }

    @Test("an added driver's section gets the loader's diagnostics: unknown keys with a did-you-mean, missing keys, bad values")
    func anAddedDriversSectionIsCheckedAtItsLines() throws {
        let text = policy("""
                driver: testdns
                testdns:
                  zoen: Z0123456789
                  endpoint: ftp://127.0.0.1:5000
            """)
        let folder = try Folder(policy: text)
        defer { folder.remove() }
        let (configuration, diagnostics) = folder.load(extended)
        #expect(diagnostics.map(\.description) == [
            "\(try folder.at("zoen")): unknown key 'zoen' in spec.loadBalancer.testdns; did you mean 'zone'?",
            "\(try folder.at("ftp://")): 'endpoint' must be an http:// or https:// URL, got 'ftp://127.0.0.1:5000'",
        ])
        #expect(configuration.policy(named: "p") == nil)
    }

    @Test("a key needing a capability the added driver lacks is refused at the key, with the driver's name")
    func aCapabilityTheDriverLacksIsRefused() throws {
        let text = policy(testDNS, drain: "  drain:\n    timeout: 1h\n    forceAfter: 30m\n")
        let folder = try Folder(policy: text)
        defer { folder.remove() }
        let (_, diagnostics) = folder.load(extended)
        #expect(diagnostics.map(\.description) == [
            "\(try folder.at("forceAfter")): 'forceAfter' cannot be carried out with driver 'testdns': the testdns driver cannot close open sessions on demand; remove it: the drain waits for them, and 'timeout' says when to stop waiting",
        ])
    }

    @Test("without its line, the driver is unknown, and every unknown name lists the registry's drivers")
    func theKnownDriversAreTheRegistrys() throws {
        let folder = try Folder(policy: policy(testDNS))
        defer { folder.remove() }
        let (_, standard) = folder.load(.standard)
        #expect(standard.map(\.description) == [
            "\(try folder.at("testdns\n")): unknown driver 'testdns'; known drivers: haproxy, envoy, route53, alb",
        ])

        let nginx = try Folder(policy: policy("    driver: nginx\n    testdns: {zone: Z1, endpoint: http://127.0.0.1:5000}"))
        defer { nginx.remove() }
        #expect(nginx.load(extended).1.map(\.description) == [
            "\(try nginx.at("nginx")): unknown driver 'nginx'; known drivers: haproxy, envoy, route53, alb, testdns",
        ])
        #expect(DriverRegistry.standard.names == ["haproxy", "envoy", "route53", "alb"])
        #expect(extended.names == ["haproxy", "envoy", "route53", "alb", "testdns"])
    }
}
