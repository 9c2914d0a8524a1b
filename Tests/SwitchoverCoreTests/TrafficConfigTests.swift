import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverTestKit
import Testing

/// A driver that moves weights and counts nothing, as a DNS record does: the loader must refuse
/// its policies unless `traffic.prometheus` counts for it. Only its description is used here.
private struct CountlessDriver: LoadBalancerDriver {
    var name: String { "countless" }
    var translation: WeightTranslation { WeightTranslation(maxWeight: 255) }
    var capabilities: RouterCapabilities { [] }
    var countsTraffic: Bool { false }

    func decodeSection(_ section: ConfigValue) -> (any DriverSpec)? {
        guard let fields = section.mapping(context: "spec.loadBalancer.countless", known: ["zone"]) else { return nil }
        return fields.required("zone").flatMap { $0.nonEmptyString() }.map(CountlessSpec.init(zone:))
    }

    func make(_ settings: any DriverSpec, from: ClusterServers, to: ClusterServers, logger: Logger) throws
        -> (router: any WeightRouter, observer: (any TrafficObserver)?) {
        throw LoadBalancerError(.unsupported, driver: name, address: "-", message: "no router in this test")
    }
}

private struct CountlessSpec: DriverSpec {
    var zone: String
    var fingerprint: String { "zone=\(zone)" }
}

/// `spec.traffic.prometheus`: where per-cluster counters come from when the router has none, or
/// in place of the load balancer's own.
@Suite struct TrafficConfigTests {
    static let traffic = """
          traffic:
            prometheus:
              url: http://127.0.0.1:9090
              requests: 'sum(istio_requests_total{cluster="$cluster"})'
              errors: 'sum(istio_requests_total{cluster="$cluster",response_code=~"5.."})'
              activeSessions: 'sum(envoy_http_downstream_rq_active{cluster="$cluster"})'

        """

    static func policy(traffic: String = TrafficConfigTests.traffic) -> String {
        ConfigFixture.policy.replacingOccurrences(of: "  drain:\n", with: traffic + "  drain:\n")
    }

    func load(_ policy: String, drivers: [any DriverDescription] = DriverRegistry.standard.descriptions) throws
        -> (Configuration, [Diagnostic], ConfigFixture) {
        let fixture = try ConfigFixture(policies: ["p.yaml": policy])
        let (configuration, diagnostics) = ConfigLoader.load(clustersDirectory: fixture.clustersDirectory,
                                                             policiesDirectory: fixture.policiesDirectory, drivers: drivers)
        return (configuration, diagnostics, fixture)
    }

    @Test func theContractsSectionReadsAndSubstitutesTheCluster() throws {
        let (configuration, diagnostics, fixture) = try load(Self.policy())
        defer { fixture.remove() }
        #expect(diagnostics.isEmpty, "\(diagnostics.map(\.description))")
        let p = try #require(configuration.policy(named: "p")?.traffic?.prometheus)
        #expect(p.url.absoluteString == "http://127.0.0.1:9090")
        #expect(PrometheusTraffic.query(p.errors, cluster: "green") == #"sum(istio_requests_total{cluster="green",response_code=~"5.."})"#)
        #expect(p.activeSessions != nil)
        let policy = try #require(configuration.policy(named: "p"))
        #expect(policy.trafficSource.hasPrefix("Prometheus at http://127.0.0.1:9090 (requests, errors, activeSessions per cluster"))
        #expect(policy.trafficSource.contains("in place of the haproxy load balancer's own counters"))
    }

    @Test func activeSessionsIsOptionalAndWithoutTrafficTheDriverCounts() throws {
        let noActive = Self.traffic.split(separator: "\n").filter { !$0.contains("activeSessions") }.joined(separator: "\n") + "\n"
        let (configuration, diagnostics, fixture) = try load(Self.policy(traffic: noActive))
        defer { fixture.remove() }
        #expect(diagnostics.isEmpty, "\(diagnostics.map(\.description))")
        #expect(configuration.policy(named: "p")?.traffic?.prometheus.activeSessions == nil)

        let (plain, none, other) = try load(ConfigFixture.policy)
        defer { other.remove() }
        #expect(none.isEmpty)
        #expect(plain.policy(named: "p")?.traffic == nil)
        #expect(plain.policy(named: "p")?.trafficSource == "the haproxy load balancer's own counters")
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var replace: String
        var with: String
        var at: String
        var message: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "a query without $cluster could not tell the clusters apart",
             replace: #"errors: 'sum(istio_requests_total{cluster="$cluster",response_code=~"5.."})'"#,
             with: #"errors: 'sum(istio_requests_total{response_code=~"5.."})'"#,
             at: #"'sum(istio_requests_total{response_code"#, message: "'errors' does not use $cluster: the same series would be counted for both clusters"),
        Case(name: "activeSessions without $cluster too", replace: #"activeSessions: 'sum(envoy_http_downstream_rq_active{cluster="$cluster"})'"#,
             with: "activeSessions: 'sum(envoy_http_downstream_rq_active)'", at: "'sum(envoy_http_downstream_rq_active)'",
             message: "'activeSessions' does not use $cluster"),
        Case(name: "a non-http URL", replace: "url: http://127.0.0.1:9090\n      requests",
             with: "url: ftp://127.0.0.1:9090\n      requests", at: "ftp://", message: "'url' must be an http:// or https:// URL, got 'ftp://127.0.0.1:9090'"),
        Case(name: "an unknown key in the prometheus section, with a suggestion", replace: "      requests:", with: "      requets:",
             at: "requets", message: "unknown key 'requets' in spec.traffic.prometheus; did you mean 'requests'?"),
        Case(name: "a misspelt section name", replace: "  traffic:\n", with: "  trafic:\n", at: "trafic",
             message: "did you mean 'traffic'?"),
        Case(name: "errors is required", replace: #"      errors: 'sum(istio_requests_total{cluster="$cluster",response_code=~"5.."})'"# + "\n",
             with: "", at: "url: http://127.0.0.1:9090\n      requests", message: "missing required key 'errors'"),
    ]

    @Test("each mistake in traffic.prometheus is one diagnostic at its FILE:LINE:COL", arguments: cases)
    func oneDiagnostic(_ c: Case) throws {
        let original = Self.policy()
        #expect(original.contains(c.replace), "the case must edit the document")
        let edited = original.replacingOccurrences(of: c.replace, with: c.with)
        let (_, diagnostics, fixture) = try load(edited)
        defer { fixture.remove() }
        let at = try #require(position(of: c.at, in: edited))
        #expect(diagnostics.count == 1, "\(diagnostics.map(\.description))")
        let diagnostic = try #require(diagnostics.first)
        #expect(diagnostic.location.file == fixture.path("policies/p.yaml"))
        #expect(diagnostic.location.line == at.line && diagnostic.location.column == at.column, "expected \(at), got \(diagnostic)")
        #expect(diagnostic.message.contains(c.message), "got: \(diagnostic.message)")
    }

    /// With services, each query must select the service too (`$service`), or one failing
    /// service would be diluted in the others' counters.
    @Test func withServicesEveryQueryNeedsTheService() throws {
        let fleet = Self.policy().replacingOccurrences(of: "      backend: app\n", with: "      services: {cart: be_cart, search: be_search}\n")
        #expect(fleet != Self.policy(), "the fixture must list services")
        let (_, diagnostics, fixture) = try load(fleet)
        defer { fixture.remove() }
        let shown = diagnostics.map(\.description)
        // One for each query without it (requests, errors, activeSessions), each at its value.
        #expect(diagnostics.count == 3 && diagnostics.allSatisfy { $0.message.contains("does not use $service") }, "\(shown)")
        let at = try #require(position(of: #"'sum(istio_requests_total{cluster="$cluster"})'"#, in: fleet))
        #expect(diagnostics.first?.location.line == at.line && diagnostics.first?.location.column == at.column, "\(shown)")
        #expect(diagnostics.first?.message.contains("'requests' does not use $service, and spec.loadBalancer lists services (cart, search)") == true, "\(shown)")

        let withService = fleet.replacingOccurrences(of: #"{cluster="$cluster""#, with: #"{cluster="$cluster",destination_service_name="$service""#)
        #expect(withService.components(separatedBy: "$service").count == 4, "all three queries edited")
        let (configuration, none, other) = try load(withService)
        defer { other.remove() }
        #expect(none.isEmpty, "\(none.map(\.description))")
        let p = try #require(configuration.policy(named: "p")?.traffic?.prometheus)
        #expect(PrometheusTraffic.query(p.requests, cluster: "green", service: "cart")
                == #"sum(istio_requests_total{cluster="green",destination_service_name="cart"})"#)
    }

    /// A router that counts nothing (Route53, an ALB) leaves gates, hard signal and drain blind:
    /// refused at the driver's name unless the policy says where traffic is counted.
    @Test func aDriverThatCountsNothingNeedsTrafficPrometheus() throws {
        let drivers = DriverRegistry.standard.descriptions + [CountlessDriver()]
        let countless = ConfigFixture.policy.replacingOccurrences(
            of: "    driver: haproxy\n    haproxy:\n      socket: admin.sock\n      backend: app\n",
            with: "    driver: countless\n    countless:\n      zone: Z1\n")
        #expect(countless.contains("driver: countless"))
        let (_, refused, fixture) = try load(countless, drivers: drivers)
        defer { fixture.remove() }
        let at = try #require(position(of: "countless\n    countless:", in: countless))
        #expect(refused.count == 1, "\(refused.map(\.description))")
        #expect(refused.first?.location.line == at.line && refused.first?.location.column == at.column, "\(refused.map(\.description))")
        #expect(refused.first?.message.hasPrefix("driver 'countless' counts no traffic: add 'traffic.prometheus'") == true,
                "\(refused.map(\.description))")

        let counted = countless.replacingOccurrences(of: "  drain:\n", with: Self.traffic + "  drain:\n")
        let (configuration, none, other) = try load(counted, drivers: drivers)
        defer { other.remove() }
        #expect(none.isEmpty, "\(none.map(\.description))")
        let policy = try #require(configuration.policy(named: "p"))
        #expect(policy.trafficSource.hasPrefix("Prometheus at http://127.0.0.1:9090"))
        #expect(!policy.trafficSource.contains("in place of"))
    }

    /// An edit of the queries between a run's start and its resume changes what the gates judge.
    @Test func theFingerprintSeesAnEditOfTheQueries() throws {
        let (before, _, a) = try load(Self.policy())
        defer { a.remove() }
        let (after, _, b) = try load(Self.policy().replacingOccurrences(of: #"response_code=~"5..""#, with: #"response_code=~"50.""#))
        defer { b.remove() }
        let (none, _, c) = try load(ConfigFixture.policy)
        defer { c.remove() }
        let f0 = PolicyFingerprint(try #require(before.policy(named: "p")))
        let f1 = PolicyFingerprint(try #require(after.policy(named: "p")))
        let f2 = PolicyFingerprint(try #require(none.policy(named: "p")))
        // (Each fixture is a folder of its own, so the socket's resolved path differs too.)
        let edited = f0.changes(to: f1).filter { $0.hasPrefix("traffic ") }
        #expect(edited.count == 1 && edited.first?.hasPrefix("traffic prometheus url=http://127.0.0.1:9090") == true, "\(edited)")
        #expect(edited.first?.hasSuffix(#"response_code=~"50."}) activeSessions=sum(envoy_http_downstream_rq_active{cluster="$cluster"})"#) == true)
        #expect(f2.fields["traffic"] == "load balancer")
        #expect(f2.changes(to: f0).filter { $0.hasPrefix("traffic ") }.count == 1)
    }
}
