import Foundation
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverTestKit
import Testing

/// A configuration laid out in a fresh temporary folder: `clusters/`, `policies/`, and a
/// `pki/root.pem` the clusters point at (the loader only checks that it exists).
struct ConfigFixture {
    let root: URL
    var clustersDirectory: String { root.appendingPathComponent("clusters").path }
    var policiesDirectory: String { root.appendingPathComponent("policies").path }

    init(clusters: [String: String] = ConfigFixture.defaultClusters,
         policies: [String: String] = ["p.yaml": ConfigFixture.policy]) throws {
        root = try TemporaryDirectory.make("config")
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("clusters"), withIntermediateDirectories: true)
        try fm.createDirectory(at: root.appendingPathComponent("policies"), withIntermediateDirectories: true)
        try fm.createDirectory(at: root.appendingPathComponent("pki"), withIntermediateDirectories: true)
        try Data("not checked by the loader\n".utf8).write(to: root.appendingPathComponent("pki/root.pem"))
        for (name, text) in clusters { try write(text, to: "clusters/\(name)") }
        for (name, text) in policies { try write(text, to: "policies/\(name)") }
    }

    func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: root.appendingPathComponent(path))
    }

    func load() -> (Configuration, [Diagnostic]) {
        ConfigLoader.load(clustersDirectory: clustersDirectory, policiesDirectory: policiesDirectory,
                          drivers: DriverRegistry.standard.descriptions)
    }

    func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    func remove() { try? FileManager.default.removeItem(at: root) }

    static func cluster(_ name: String, servers: String) -> String {
        """
        apiVersion: switchover.dev/v1alpha1
        kind: Cluster
        metadata:
          name: \(name)
        spec:
          istio:
            version: "1.27.4"
            revision: "1-27"
          trust:
            trustDomain: cluster.local
            rootCerts: ../pki/root.pem
          loadBalancer:
            servers: \(servers)

        """
    }

    static let defaultClusters = [
        "blue.yaml": cluster("blue", servers: "[blue-1, blue-2]"),
        "green.yaml": cluster("green", servers: "[green-1, green-2]"),
    ]

    static let policy = """
        apiVersion: switchover.dev/v1alpha1
        kind: Policy
        metadata:
          name: p
        spec:
          loadBalancer:
            driver: haproxy
            haproxy:
              socket: admin.sock
              backend: app
          steps: [1, 50, 100]
          bake: 30s
          interval: 1s
          gates:
            - name: g
              loadBalancer: {cluster: green, max5xxRatio: 0.01, minRequests: 5}
            - name: prom
              prometheus:
                url: http://127.0.0.1:9090
                query: up
                max: 1
          drain:
            holdFor: 10s
            dnsTTL: 0s
            timeout: 1h

        """
}

/// One broken document and where its single diagnostic must point.
struct LoaderCase: CustomTestStringConvertible, Sendable {
    enum Target: Sendable { case policy, cluster }
    var name: String
    var target: Target = .policy
    var replace: String
    var with: String
    /// The text the diagnostic must point at (its first occurrence in the edited document).
    var at: String
    var message: String
    var testDescription: String { name }
}

@Suite struct ConfigLoaderErrorTests {
    static let cases: [LoaderCase] = [
        LoaderCase(name: "misspelt key in a gate", replace: "max5xxRatio: 0.01", with: "maxx5xxRatio: 0.01",
                   at: "maxx5xxRatio", message: "unknown key 'maxx5xxRatio' in gate loadBalancer; did you mean 'max5xxRatio'?"),
        LoaderCase(name: "unknown key with no near match lists the known keys", replace: "  bake: 30s", with: "  bake: 30s\n  colour: blue",
                   at: "colour", message: "unknown key 'colour' in spec; known keys: loadBalancer, steps, bake"),
        LoaderCase(name: "unknown key in metadata", replace: "  name: p", with: "  name: p\n  nmae: q",
                   at: "nmae", message: "unknown key 'nmae' in metadata; did you mean 'name'?"),
        LoaderCase(name: "missing required key", replace: "  bake: 30s\n", with: "",
                   at: "loadBalancer:\n    driver", message: "missing required key 'bake' in spec"),
        LoaderCase(name: "missing metadata.name", replace: "  name: p\n", with: "  {}\n",
                   at: "{}", message: "missing required key 'name' in metadata"),
        LoaderCase(name: "a list where a duration belongs", replace: "bake: 30s", with: "bake: [30s]",
                   at: "[30s]", message: "'bake' must be a single value, got a list"),
        LoaderCase(name: "a word where a count belongs", replace: "  bake: 30s", with: "  bake: 30s\n  failureThreshold: two",
                   at: "two", message: "'failureThreshold' must be a whole number, got 'two'"),
        LoaderCase(name: "a duration without a unit", replace: "bake: 30s", with: "bake: 30",
                   at: "30\n", message: "'bake' must be a duration such as 250ms, 30s, 5m, 24h or 30d, got '30' (a unit is required)"),
        LoaderCase(name: "a bool that is not one", replace: "  drain:", with: "  rollback:\n    automatic: sometimes\n  drain:",
                   at: "sometimes", message: "'automatic' must be true or false"),
        LoaderCase(name: "steps not strictly increasing", replace: "[1, 50, 100]", with: "[10, 5, 100]",
                   at: "5, 100", message: "steps must increase strictly: 5 follows 10"),
        LoaderCase(name: "a repeated step", replace: "[1, 50, 100]", with: "[1, 50, 50, 100]",
                   at: "50, 100", message: "steps must increase strictly: 50 follows 50"),
        LoaderCase(name: "a step above 100", replace: "[1, 50, 100]", with: "[1, 150, 100]",
                   at: "150", message: "step 150 is outside 0–100"),
        LoaderCase(name: "a negative step", replace: "[1, 50, 100]", with: "[-5, 50, 100]",
                   at: "-5", message: "step -5 is outside 0–100"),
        LoaderCase(name: "steps not ending at 100", replace: "[1, 50, 100]", with: "[1, 50, 90]",
                   at: "90", message: "the last step must be 100 (all traffic on TO), got 90"),
        LoaderCase(name: "empty steps", replace: "[1, 50, 100]", with: "[]",
                   at: "[]", message: "'steps' is empty"),
        LoaderCase(name: "steps that are not a list", replace: "[1, 50, 100]", with: "100",
                   at: "100\n", message: "'steps' must be a list"),
        LoaderCase(name: "zero bake", replace: "bake: 30s", with: "bake: 0s",
                   at: "0s", message: "'bake' must be greater than 0, got 0s"),
        LoaderCase(name: "negative bake", replace: "bake: 30s", with: "bake: -5s",
                   at: "-5s", message: "'bake' must be greater than 0, got -5s"),
        LoaderCase(name: "zero interval", replace: "interval: 1s", with: "interval: 0ms",
                   at: "0ms", message: "'interval' must be greater than 0, got 0s"),
        LoaderCase(name: "zero sampling", replace: "  bake: 30s", with: "  bake: 30s\n  sampling: 0s",
                   at: "0s\n  interval", message: "'sampling' must be greater than 0, got 0s"),
        LoaderCase(name: "zero holdFor", replace: "holdFor: 10s", with: "holdFor: 0s",
                   at: "0s\n    dnsTTL", message: "'holdFor' must be greater than 0, got 0s"),
        LoaderCase(name: "negative drain timeout", replace: "timeout: 1h", with: "timeout: -1h",
                   at: "-1h", message: "'timeout' must be greater than 0, got -1h"),
        LoaderCase(name: "negative dnsTTL", replace: "dnsTTL: 0s", with: "dnsTTL: -30s",
                   at: "-30s", message: "'dnsTTL' must not be negative, got -30s"),
        LoaderCase(name: "interval longer than bake", replace: "interval: 1s", with: "interval: 1m",
                   at: "1m", message: "'interval' (1m) is longer than 'bake' (30s): no gate would be evaluated within a step"),
        LoaderCase(name: "a DNS TTL as long as the drain's timeout", replace: "dnsTTL: 0s", with: "dnsTTL: 1h",
                   at: "1h\n    timeout", message: "'dnsTTL' (1h) is not shorter than 'timeout' (1h): the drain could never finish"),
        LoaderCase(name: "a DNS TTL and then the hold no shorter than the drain's timeout", replace: "dnsTTL: 0s", with: "dnsTTL: 59m50s",
                   at: "59m50s", message: "'dnsTTL' (59m50s) and then 'holdFor' (10s) are not shorter than 'timeout' (1h): the hold begins only after the DNS TTL"),
        LoaderCase(name: "forceAfter not before timeout", replace: "timeout: 1h", with: "timeout: 1h\n    forceAfter: 2h",
                   at: "2h", message: "'forceAfter' (2h) is not before 'timeout' (1h)"),
        LoaderCase(name: "a ratio written as a percentage", replace: "max5xxRatio: 0.01", with: "max5xxRatio: 5",
                   at: "5, minRequests", message: "'max5xxRatio' must be between 0 and 1, got 5 (a ratio: write 0.05 for 5%)"),
        LoaderCase(name: "a negative ratio in the hard signal", replace: "  drain:",
                   with: "  rollback:\n    hardSignal: {max5xxRatio: -0.1}\n  drain:",
                   at: "-0.1", message: "'max5xxRatio' must be between 0 and 1, got -0.1"),
        LoaderCase(name: "a negative count", replace: "minRequests: 5", with: "minRequests: -1",
                   at: "-1", message: "'minRequests' must not be negative, got -1"),
        LoaderCase(name: "negative maxActiveSessions", replace: "holdFor: 10s", with: "holdFor: 10s\n    maxActiveSessions: -2",
                   at: "-2", message: "'maxActiveSessions' must not be negative, got -2"),
        LoaderCase(name: "failureThreshold below 1", replace: "  bake: 30s", with: "  bake: 30s\n  failureThreshold: 0",
                   at: "0\n", message: "'failureThreshold' must be at least 1, got 0"),
        LoaderCase(name: "pauseAfterErrors below 1", replace: "  bake: 30s", with: "  bake: 30s\n  pauseAfterErrors: 0",
                   at: "0\n", message: "'pauseAfterErrors' must be at least 1, got 0"),
        LoaderCase(name: "a driver without its section", replace: "    haproxy:\n      socket: admin.sock\n      backend: app\n", with: "",
                   at: "driver", message: "driver 'haproxy' needs its section 'spec.loadBalancer.haproxy'"),
        LoaderCase(name: "an unknown driver", replace: "driver: haproxy", with: "driver: nginx",
                   at: "nginx", message: "unknown driver 'nginx'; known drivers: haproxy, envoy, route53, alb"),
        LoaderCase(name: "a misspelt driver", replace: "driver: haproxy", with: "driver: haprxy",
                   at: "haprxy", message: "unknown driver 'haprxy'; known drivers: haproxy, envoy, route53, alb; did you mean 'haproxy'?"),
        LoaderCase(name: "a section for a driver not selected", replace: "      backend: app\n",
                   with: "      backend: app\n    envoy:\n      routeFile: r.yaml\n",
                   at: "envoy:", message: "section 'envoy' is for a driver that is not selected (driver is 'haproxy')"),
        LoaderCase(name: "an HAProxy socket that is neither a path nor tcp://", replace: "socket: admin.sock", with: "socket: http://x:1",
                   at: "http://x:1", message: "'socket' must be a UNIX socket path or tcp://host:port"),
        LoaderCase(name: "an Envoy admin that is not an http URL",
                   replace: "    driver: haproxy\n    haproxy:\n      socket: admin.sock\n      backend: app\n",
                   with: "    driver: envoy\n    envoy:\n      routeFile: rds/route.yaml\n      routeName: r\n      admin: 127.0.0.1:9901\n",
                   at: "127.0.0.1:9901", message: "'admin' must be an http:// or https:// URL, got '127.0.0.1:9901'"),
        LoaderCase(name: "a gate with neither source", replace: "    - name: g\n      loadBalancer: {cluster: green, max5xxRatio: 0.01, minRequests: 5}\n",
                   with: "    - name: g\n",
                   at: "name: g", message: "gate 'g' has no source; give it 'loadBalancer' or 'prometheus'"),
        LoaderCase(name: "a gate with both sources", replace: "      loadBalancer: {cluster: green, max5xxRatio: 0.01, minRequests: 5}\n",
                   with: "      loadBalancer: {cluster: green, max5xxRatio: 0.01, minRequests: 5}\n      prometheus: {url: http://h:1, query: up, max: 1}\n",
                   at: "prometheus: {", message: "gate 'g' has both 'loadBalancer' and 'prometheus'"),
        LoaderCase(name: "duplicate gate names", replace: "- name: prom", with: "- name: g",
                   at: "g\n      prometheus", message: "duplicate gate name 'g'"),
        LoaderCase(name: "a load-balancer gate that checks nothing", replace: "{cluster: green, max5xxRatio: 0.01, minRequests: 5}",
                   with: "{cluster: green, minRequests: 5}",
                   at: "{cluster", message: "gate 'g' checks nothing; set 'max5xxRatio' or 'maxMeanResponseTime'"),
        LoaderCase(name: "a gate judging an unknown cluster", replace: "cluster: green", with: "cluster: gren",
                   at: "gren", message: "gate 'g' judges unknown cluster 'gren'; known clusters: blue, green"),
        LoaderCase(name: "a prometheus url that is not http(s)", replace: "url: http://127.0.0.1:9090", with: "url: ftp://127.0.0.1:9090",
                   at: "ftp://", message: "'url' must be an http:// or https:// URL, got 'ftp://127.0.0.1:9090'"),
        LoaderCase(name: "prometheus max below min", replace: "        max: 1\n", with: "        min: 2\n        max: 1\n",
                   at: "1\n  drain", message: "'max' (1) is below 'min' (2): the gate could never pass"),
        LoaderCase(name: "a wrong kind", replace: "kind: Policy", with: "kind: Polcy",
                   at: "Polcy", message: "unknown kind 'Polcy'; expected Policy; did you mean 'Policy'?"),
        LoaderCase(name: "a Cluster in the policies folder", replace: "kind: Policy", with: "kind: Cluster",
                   at: "Cluster", message: "kind 'Cluster' in the policies folder; expected Policy"),
        LoaderCase(name: "a wrong apiVersion", replace: "switchover.dev/v1alpha1", with: "switchover.dev/v1",
                   at: "switchover.dev/v1", message: "unsupported apiVersion 'switchover.dev/v1'; expected switchover.dev/v1alpha1"),
        LoaderCase(name: "a name that is not a DNS label", replace: "name: p\n", with: "name: My_Policy\n",
                   at: "My_Policy", message: "name 'My_Policy' must be a DNS label"),
        LoaderCase(name: "a key given twice", replace: "  bake: 30s", with: "  bake: 30s\n  bake: 40s",
                   at: "bake", message: "not YAML: duplicate key 'bake' in one mapping"),
        LoaderCase(name: "several documents in one file", replace: "kind: Policy", with: "kind: Policy\n---\nkind: Policy",
                   at: "kind: Policy\nmetadata", message: "2 YAML documents in one file; Switchover reads exactly one document per file"),
        LoaderCase(name: "a document that is not a mapping", replace: ConfigFixture.policy, with: "- just\n- a list\n",
                   at: "- just", message: "not a Switchover document: expected a mapping with apiVersion, kind, metadata and spec, got a list"),

        // Durations are bounded (ConfigurationLimits): past the bound is an error at the value,
        // never a trap (2^63-1 ns) or an overflow later (30000d in `plan`).
        LoaderCase(name: "a bake of 2^63-1 nanoseconds", replace: "bake: 30s", with: "bake: 9223372036854775807ns",
                   at: "9223372036854775807ns", message: "'bake' must be at most 30d, got '9223372036854775807ns'"),
        LoaderCase(name: "a bake of 30000 days", replace: "bake: 30s", with: "bake: 30000d",
                   at: "30000d", message: "'bake' must be at most 30d, got '30000d'"),
        LoaderCase(name: "a bake of minus 2^63-1 seconds", replace: "bake: 30s", with: "bake: -9223372036854775807s",
                   at: "-9223372036854775807s", message: "'bake' must be greater than 0, got '-9223372036854775807s'"),
        LoaderCase(name: "a drain timeout of 2^63-1 seconds", replace: "timeout: 1h", with: "timeout: 9223372036854775807s",
                   at: "9223372036854775807s", message: "'timeout' must be at most 30d, got '9223372036854775807s'"),
        LoaderCase(name: "a DNS TTL longer than resolvers keep one", replace: "dnsTTL: 0s", with: "dnsTTL: 8d",
                   at: "8d", message: "'dnsTTL' must be at most 7d, got '8d'"),
        LoaderCase(name: "a sampling period slower than a minute", replace: "  bake: 30s", with: "  bake: 30s\n  sampling: 2m",
                   at: "2m", message: "'sampling' must be at most 1m, got '2m'"),
        LoaderCase(name: "a gate's mean response time above an hour", replace: "minRequests: 5}", with: "minRequests: 5, maxMeanResponseTime: 2h}",
                   at: "2h", message: "'maxMeanResponseTime' must be at most 1h, got '2h'"),
        LoaderCase(name: "a trust horizon beyond a year", replace: "  drain:", with: "  trust: {horizon: 400d}\n  drain:",
                   at: "400d", message: "'horizon' must be at most 365d, got '400d'"),

        // Names that go into HAProxy runtime-API lines: what the API reads as syntax is refused.
        LoaderCase(name: "a backend with a ';' (a second runtime-API command)", replace: "backend: app", with: "backend: \"app;shutdown sessions server app/blue-1\"",
                   at: "\"app;", message: "backend 'app;shutdown sessions server app/blue-1' is not a HAProxy backend name: letters, digits, '-', '_', '.' and ':' only"),
        LoaderCase(name: "a backend with a '/'", replace: "backend: app", with: "backend: app/x",
                   at: "app/x", message: "backend 'app/x' is not a HAProxy backend name"),
        LoaderCase(name: "a server with a ';'", target: .cluster, replace: "[green-1, green-2]", with: "[green-1, \"green-2;disable server app/blue-1\"]",
                   at: "\"green-2;", message: "server 'green-2;disable server app/blue-1' is not a load-balancer name: letters, digits, '-', '_', '.' and ':' only (';', blanks, '/' and control characters are runtime-API syntax)"),
        LoaderCase(name: "a server with a blank", target: .cluster, replace: "[green-1, green-2]", with: "[green-1, \"green 2\"]",
                   at: "\"green 2\"", message: "server 'green 2' is not a load-balancer name"),
        LoaderCase(name: "a server with a '/'", target: .cluster, replace: "[green-1, green-2]", with: "[green-1, app/green-2]",
                   at: "app/green-2", message: "server 'app/green-2' is not a load-balancer name"),
        LoaderCase(name: "a server with a control character", target: .cluster, replace: "[green-1, green-2]", with: "[green-1, \"green-2\\r\"]",
                   at: "\"green-2", message: "server 'green-2\\r' is not a load-balancer name"),
        LoaderCase(name: "a server with a non-ASCII letter", target: .cluster, replace: "[green-1, green-2]", with: "[green-1, grün-2]",
                   at: "grün-2", message: "server 'grün-2' is not a load-balancer name"),
        // A step the servers cannot express: 0.0001% with 2 servers a side is 0% (the least is 0.389%).
        LoaderCase(name: "a step no pair of clusters can express", replace: "[1, 50, 100]", with: "[0.0001, 50, 100]",
                   at: "0.0001", message: "step 0.0001 sends no traffic to TO with any two of the clusters defined, so no gate on TO could pass: the finest pair is 'blue' -> 'green', and the smallest share 'blue' (2 servers) can give 'green' (2 servers) is 0.389% (green 1 per server, blue 256 per server; haproxy weights 0-256); make the step at least that"),

        // Cluster documents.
        LoaderCase(name: "an empty trustDomain", target: .cluster, replace: "trustDomain: cluster.local", with: "trustDomain: \"\"",
                   at: "\"\"", message: "'trustDomain' must not be empty"),
        LoaderCase(name: "a trustDomain with spiffe://", target: .cluster, replace: "trustDomain: cluster.local", with: "trustDomain: spiffe://cluster.local",
                   at: "spiffe://", message: "'trustDomain' is the bare domain"),
        LoaderCase(name: "a health that is not an http URL", target: .cluster, replace: "  loadBalancer:",
                   with: "  health: localhost:8080/healthz\n  loadBalancer:",
                   at: "localhost:8080", message: "'health' must be an http:// or https:// URL, got 'localhost:8080/healthz'"),
        LoaderCase(name: "a cluster without servers", target: .cluster, replace: "[green-1, green-2]", with: "[]",
                   at: "[]", message: "'servers' is empty"),
        LoaderCase(name: "a cluster whose loadBalancer lacks servers", target: .cluster, replace: "    servers: [green-1, green-2]\n", with: "    {}\n",
                   at: "{}", message: "missing required key 'servers' in spec.loadBalancer"),
        LoaderCase(name: "a server listed twice", target: .cluster, replace: "[green-1, green-2]", with: "[green-1, green-1]",
                   at: "green-1]", message: "server 'green-1' is listed twice"),
        LoaderCase(name: "a rootCerts file that does not exist", target: .cluster, replace: "../pki/root.pem", with: "../pki/missing.pem",
                   at: "../pki/missing.pem", message: "'rootCerts': no such file"),
        LoaderCase(name: "an Istio version that is not semantic", target: .cluster, replace: "\"1.27.4\"", with: "latest",
                   at: "latest", message: "'version' must be a semantic version such as 1.27.4, got 'latest'"),
        LoaderCase(name: "a probe without a port", target: .cluster, replace: "    rootCerts: ../pki/root.pem\n",
                   with: "    rootCerts: ../pki/root.pem\n    probe: 127.0.0.1\n",
                   at: "127.0.0.1", message: "'probe' must be host:port"),
    ]

    @Test("each mistake gives exactly one diagnostic at the offending node", arguments: cases)
    func oneDiagnostic(_ c: LoaderCase) throws {
        let original = c.target == .policy ? ConfigFixture.policy : ConfigFixture.cluster("green", servers: "[green-1, green-2]")
        #expect(original.contains(c.replace), "the case must edit the document")
        let edited = original.replacingOccurrences(of: c.replace, with: c.with)
        let fixture = c.target == .policy
            ? try ConfigFixture(policies: ["p.yaml": edited])
            : try ConfigFixture(clusters: ["blue.yaml": ConfigFixture.cluster("blue", servers: "[blue-1, blue-2]"), "green.yaml": edited])
        defer { fixture.remove() }
        let (_, diagnostics) = fixture.load()
        let file = fixture.path(c.target == .policy ? "policies/p.yaml" : "clusters/green.yaml")
        let where_ = try #require(position(of: c.at, in: edited), "marker \(c.at) not in the document")
        #expect(diagnostics.count == 1, "\(diagnostics.map(\.description))")
        let diagnostic = try #require(diagnostics.first)
        #expect(diagnostic.location.file == file)
        #expect(diagnostic.location.line == where_.line && diagnostic.location.column == where_.column,
                "expected \(where_.line):\(where_.column), got \(diagnostic)")
        #expect(diagnostic.message.contains(c.message), "got: \(diagnostic.message)")
        #expect(diagnostic.description.hasPrefix("\(file):\(where_.line):\(where_.column): "))
    }
}

@Suite struct ConfigLoaderTests {
    @Test func validConfigurationLoadsWithDefaultsAndResolvedPaths() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let (configuration, diagnostics) = fixture.load()
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let green = try #require(configuration.cluster(named: "green"))
        #expect(green.loadBalancer.servers == ["green-1", "green-2"])
        #expect(green.istio == IstioSpec(version: "1.27.4", revision: "1-27"))
        // ../pki/root.pem is relative to clusters/, not to the current folder.
        #expect(green.trust.rootCerts == URL(fileURLWithPath: fixture.path("pki/root.pem")).standardized.path)
        #expect(green.health == nil)
        let policy = try #require(configuration.policy(named: "p"))
        #expect(policy.steps == [1, 50, 100])
        #expect(policy.bake == .seconds(30))
        #expect(policy.interval == .seconds(1))
        #expect(policy.sampling == .milliseconds(250))
        #expect(policy.failureThreshold == 1)
        #expect(policy.pauseAfterErrors == 3)
        #expect(policy.trustHorizon == .seconds(30 * 86_400))
        #expect(policy.loadBalancer == .haproxy(HAProxySpec(socket: fixture.path("policies/admin.sock"), backend: "app")))
        #expect(policy.gates.map(\.name) == ["g", "prom"])
        #expect(policy.gates[0].source == .loadBalancer(LoadBalancerGate(cluster: "green", max5xxRatio: 0.01, minRequests: 5, maxMeanResponseTime: nil)))
        #expect(policy.gates[1].source == .prometheus(PrometheusGate(url: URL(string: "http://127.0.0.1:9090")!, query: "up", min: nil, max: 1)))
        #expect(policy.gates[0].location.line == 15)
        #expect(policy.drain == DrainSpec(maxActiveSessions: 0, holdFor: .seconds(10), dnsTTL: .zero, timeout: .seconds(3600), forceAfter: nil))
        #expect(policy.rollback == RollbackSpec(automatic: true, hardSignal: nil))
        #expect(policy.decommission.requireApproval)
    }

    @Test func dnsTTLMayBeZeroAndTcpSocketsStayAsWritten() throws {
        let text = ConfigFixture.policy.replacingOccurrences(of: "socket: admin.sock", with: "socket: tcp://127.0.0.1:9999")
        let fixture = try ConfigFixture(policies: ["p.yaml": text])
        defer { fixture.remove() }
        let (configuration, diagnostics) = fixture.load()
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let policy = try #require(configuration.policy(named: "p"))
        #expect(policy.drain.dnsTTL == .zero)
        #expect(policy.loadBalancer == .haproxy(HAProxySpec(socket: "tcp://127.0.0.1:9999", backend: "app")))
    }

    @Test func envoyPolicyResolvesRouteFileAgainstItsFolder() throws {
        let text = ConfigFixture.policy.replacingOccurrences(
            of: "    driver: haproxy\n    haproxy:\n      socket: admin.sock\n      backend: app\n",
            with: "    driver: envoy\n    envoy:\n      routeFile: rds/route.yaml\n      routeName: switch_route\n      admin: http://127.0.0.1:9901\n")
        let fixture = try ConfigFixture(policies: ["p.yml": text])
        defer { fixture.remove() }
        let (configuration, diagnostics) = fixture.load()
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        #expect(configuration.policy(named: "p")?.loadBalancer == .envoy(EnvoySpec(
            routeFile: fixture.path("policies/rds/route.yaml"), routeName: "switch_route", admin: URL(string: "http://127.0.0.1:9901")!)))
    }

    /// Envoy cannot close what is open to one cluster: a `forceAfter` would do nothing there.
    @Test func forceAfterIsRefusedForEnvoyAtItsKey() throws {
        let envoy = ConfigFixture.policy.replacingOccurrences(
            of: "    driver: haproxy\n    haproxy:\n      socket: admin.sock\n      backend: app\n",
            with: "    driver: envoy\n    envoy:\n      routeFile: rds/route.yaml\n      routeName: switch_route\n      admin: http://127.0.0.1:9901\n")
        #expect(envoy.contains("timeout: 1h"))
        let text = envoy.replacingOccurrences(of: "timeout: 1h", with: "timeout: 1h\n    forceAfter: 30m")
        let fixture = try ConfigFixture(policies: ["p.yaml": text])
        defer { fixture.remove() }
        let (configuration, diagnostics) = fixture.load()
        #expect(diagnostics.count == 1, "\(diagnostics.map(\.description))")
        let diagnostic = try #require(diagnostics.first)
        let key = try #require(position(of: "forceAfter: 30m", in: text))
        #expect(diagnostic.location.line == key.line && diagnostic.location.column == key.column, "\(diagnostic)")
        #expect(diagnostic.message.contains("'forceAfter' cannot be carried out with driver 'envoy'"), "\(diagnostic.message)")
        #expect(configuration.policy(named: "p") == nil)
        // The same key with HAProxy is acted on (`shutdown sessions`), so it loads.
        let haproxy = try ConfigFixture(policies: ["p.yaml": ConfigFixture.policy.replacingOccurrences(
            of: "timeout: 1h", with: "timeout: 1h\n    forceAfter: 30m")])
        defer { haproxy.remove() }
        let (loaded, none) = haproxy.load()
        #expect(none.isEmpty, "\(none.map(\.description))")
        #expect(loaded.policy(named: "p")?.drain.forceAfter == .seconds(1800))
    }

    @Test func garbageBytesAreNotYAML() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        try Data([0x89, 0x50, 0x4E, 0x47, 0x00, 0xFF, 0xFE]).write(to: fixture.root.appendingPathComponent("policies/image.yaml"))
        let (_, diagnostics) = fixture.load()
        #expect(diagnostics.map(\.description) == ["\(fixture.path("policies/image.yaml")):1:1: not YAML: the file is not UTF-8 text"])
    }

    @Test func unbalancedBracketsAreNotYAML() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let text = "steps: [1, 5\nbake: 30s\n"
        try fixture.write(text, to: "policies/broken.yaml")
        let (_, diagnostics) = fixture.load()
        #expect(diagnostics.count == 1)
        let diagnostic = try #require(diagnostics.first)
        // libyaml notices the unclosed flow sequence where the next key starts.
        #expect(diagnostic.location.line == 2 && diagnostic.location.column == 5, "\(diagnostic)")
        #expect(diagnostic.message.hasPrefix("not YAML: did not find expected ',' or ']'"))
    }

    @Test func emptyAndCommentOnlyFilesAreReported() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        try fixture.write("", to: "policies/empty.yaml")
        try fixture.write("# nothing here yet\n", to: "clusters/comment.yml")
        let (configuration, diagnostics) = fixture.load()
        #expect(diagnostics.map(\.description).sorted() == [
            "\(fixture.path("clusters/comment.yml")):1:1: empty file: expected a Cluster document",
            "\(fixture.path("policies/empty.yaml")):1:1: empty file: expected a Policy document",
        ])
        #expect(configuration.clusters.count == 2 && configuration.policies.count == 1)
    }

    @Test func otherFilesInTheFoldersAreIgnored() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        try fixture.write("this is not configuration: [", to: "policies/README.md")
        try fixture.write("garbage: [", to: "policies/.p.yaml.swp")
        #expect(fixture.load().1.isEmpty)
    }

    @Test func missingAndEmptyFoldersAreReported() throws {
        let fixture = try ConfigFixture(clusters: [:])
        defer { fixture.remove() }
        let (_, diagnostics) = ConfigLoader.load(clustersDirectory: fixture.clustersDirectory,
                                                 policiesDirectory: fixture.path("nope"),
                                                 drivers: DriverRegistry.standard.descriptions)
        #expect(diagnostics.map(\.description) == [
            "\(fixture.clustersDirectory): no *.yaml or *.yml files in the clusters folder",
            "\(fixture.path("nope")): the policies folder does not exist",
        ])
    }

    @Test func duplicateClusterNamesAreReportedAtBothLocations() throws {
        let fixture = try ConfigFixture(clusters: [
            "blue.yaml": ConfigFixture.cluster("blue", servers: "[blue-1]"),
            "green.yaml": ConfigFixture.cluster("green", servers: "[green-1]"),
            "green-again.yaml": ConfigFixture.cluster("green", servers: "[green-9]"),
        ])
        defer { fixture.remove() }
        let (configuration, diagnostics) = fixture.load()
        let first = fixture.path("clusters/green-again.yaml"), second = fixture.path("clusters/green.yaml")
        #expect(diagnostics.map(\.description) == [
            "\(first):1:1: duplicate cluster name 'green'; also defined at \(second):1:1",
            "\(second):1:1: duplicate cluster name 'green'; also defined at \(first):1:1",
        ])
        #expect(configuration.clusters.filter { $0.name == "green" }.count == 1)
    }

    @Test func duplicatePolicyNamesAreReported() throws {
        let fixture = try ConfigFixture(policies: ["a.yaml": ConfigFixture.policy, "b.yaml": ConfigFixture.policy])
        defer { fixture.remove() }
        let (_, diagnostics) = fixture.load()
        #expect(diagnostics.count == 2)
        #expect(diagnostics.allSatisfy { $0.message.hasPrefix("duplicate policy name 'p'; also defined at ") })
        #expect(Set(diagnostics.map(\.location.file)) == [fixture.path("policies/a.yaml"), fixture.path("policies/b.yaml")])
    }

    @Test func serversSharedBetweenClustersAreReported() throws {
        let fixture = try ConfigFixture(clusters: [
            "blue.yaml": ConfigFixture.cluster("blue", servers: "[blue-1, shared]"),
            "green.yaml": ConfigFixture.cluster("green", servers: "[green-1, shared]"),
        ])
        defer { fixture.remove() }
        let (_, diagnostics) = fixture.load()
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.location.file == fixture.path("clusters/green.yaml"))
        #expect(diagnostics.first?.message.hasPrefix("server 'shared' of cluster 'green' is also a server of cluster 'blue'") == true)
    }

    @Test func allProblemsOfAllFilesInOneRunSortedByFileAndLine() throws {
        let badCluster = ConfigFixture.cluster("green", servers: "[]")
            .replacingOccurrences(of: "trustDomain: cluster.local", with: "trustDomain: \"\"")
        let badPolicy = ConfigFixture.policy
            .replacingOccurrences(of: "bake: 30s", with: "bake: 0s")
            .replacingOccurrences(of: "[1, 50, 100]", with: "[10, 5, 100]")
        let fixture = try ConfigFixture(
            clusters: ["blue.yaml": ConfigFixture.cluster("blue", servers: "[blue-1]"), "green.yaml": badCluster],
            policies: ["p.yaml": badPolicy, "q.yaml": "kind: [\n"])
        defer { fixture.remove() }
        let (_, diagnostics) = fixture.load()
        let summary = diagnostics.map { "\(($0.location.file as NSString).lastPathComponent):\($0.location.line)" }
        #expect(summary == ["green.yaml:10", "green.yaml:13", "p.yaml:11", "p.yaml:12", "q.yaml:2"], "\(diagnostics)")
        #expect(diagnostics == diagnostics.sorted())
    }

    @Test func theRepositoryExamplesAreValid() throws {
        let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let (configuration, diagnostics) = ConfigLoader.load(
            clustersDirectory: checkout.appendingPathComponent("clusters").path,
            policiesDirectory: checkout.appendingPathComponent("policies").path,
            drivers: DriverRegistry.standard.descriptions)
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        #expect(configuration.clusters.map(\.name).sorted() == ["blue", "green"])
        #expect(configuration.policy(named: "gradual")?.steps == [1, 5, 10, 25, 50, 75, 100])
        #expect(configuration.policy(named: "gradual")?.bake == .seconds(30))
        #expect(configuration.policy(named: "fast")?.loadBalancer.driverName == "haproxy")
        #expect(configuration.cluster(named: "blue")?.istio.version.hasPrefix("1.27.") == true)
        #expect(configuration.cluster(named: "green")?.istio.version.hasPrefix("1.28.") == true)
    }
}

@Suite struct ValidatePairTests {
    func configuration() throws -> Configuration {
        let fixture = try ConfigFixture(clusters: [
            "blue.yaml": ConfigFixture.cluster("blue", servers: "[blue-1]"),
            "green.yaml": ConfigFixture.cluster("green", servers: "[green-1]"),
            "red.yaml": ConfigFixture.cluster("red", servers: "[red-1]"),
        ])
        defer { fixture.remove() }
        let (configuration, diagnostics) = fixture.load()
        #expect(diagnostics.isEmpty)
        return configuration
    }

    @Test func aValidPairHasNoProblems() throws {
        #expect(try configuration().validatePair(from: "blue", to: "green", policy: "p").isEmpty)
    }

    @Test func fromEqualToIsRefused() throws {
        let diagnostics = try configuration().validatePair(from: "blue", to: "blue", policy: "p")
        // The policy's gate judges green, which takes no part either.
        #expect(diagnostics.map(\.message).contains("FROM and TO are both 'blue'; a switchover moves traffic between two different clusters"))
        #expect(diagnostics.first { $0.message.hasPrefix("FROM and TO") }?.description.hasPrefix("<command line>: ") == true)
    }

    @Test func unknownNamesListTheKnownOnes() throws {
        let diagnostics = try configuration().validatePair(from: "purple", to: "green", policy: "slow")
        #expect(diagnostics.map(\.message) == [
            "FROM names unknown cluster 'purple'; known clusters: blue, green, red",
            "unknown policy 'slow'; known policies: p",
        ])
    }

    /// 0.1% is expressible from red's three servers (the least is 0.13%), not from blue's one
    /// (0.389%): `validate` cannot know which pair will run, `plan` and `run` can.
    @Test func aStepThisPairCannotExpressIsRefusedAtTheStep() throws {
        let text = ConfigFixture.policy.replacingOccurrences(of: "[1, 50, 100]", with: "[0.1, 50, 100]")
        let fixture = try ConfigFixture(clusters: [
            "blue.yaml": ConfigFixture.cluster("blue", servers: "[blue-1]"),
            "green.yaml": ConfigFixture.cluster("green", servers: "[green-1]"),
            "red.yaml": ConfigFixture.cluster("red", servers: "[red-1, red-2, red-3]"),
        ], policies: ["p.yaml": text])
        defer { fixture.remove() }
        let (configuration, diagnostics) = fixture.load()
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        #expect(configuration.validatePair(from: "red", to: "green", policy: "p").isEmpty)
        let problems = configuration.validatePair(from: "blue", to: "green", policy: "p")
        let at = try #require(position(of: "0.1,", in: text))
        #expect(problems.map(\.description) == [
            "\(fixture.path("policies/p.yaml")):\(at.line):\(at.column): step 0.1 sends no traffic to 'green' with these servers, so no gate on it could pass: the smallest share 'blue' (1 server) can give 'green' (1 server) is 0.389% (green 1 per server, blue 256 per server; haproxy weights 0-256); make the step at least that",
        ])
        // 0.2% is just past half the least share: it rounds up to 0.389%, not down to 0.
        let configuration2 = try { () throws -> Configuration in
            let fixture = try ConfigFixture(clusters: [
                "blue.yaml": ConfigFixture.cluster("blue", servers: "[blue-1]"),
                "green.yaml": ConfigFixture.cluster("green", servers: "[green-1]"),
            ], policies: ["p.yaml": ConfigFixture.policy.replacingOccurrences(of: "[1, 50, 100]", with: "[0.2, 50, 100]")])
            defer { fixture.remove() }
            let (configuration, diagnostics) = fixture.load()
            #expect(diagnostics.isEmpty, "\(diagnostics)")
            return configuration
        }()
        #expect(configuration2.validatePair(from: "blue", to: "green", policy: "p").isEmpty)
    }

    @Test func aGateOnAClusterOutsideThePairIsRefused() throws {
        let diagnostics = try configuration().validatePair(from: "blue", to: "red", policy: "p")
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.message == "gate 'g' judges cluster 'green', which is neither FROM ('blue') nor TO ('red') of this switchover")
        #expect(diagnostics.first?.location.line == 15)
    }
}
