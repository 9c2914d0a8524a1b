import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverNet
import SwitchoverSignals
import SwitchoverTestKit
import Testing

/// The sampler against a real HAProxy in front of two real nginx backends.
@Suite
struct LoadBalancerSamplerTests {
    @Test("samples carry each cluster's cumulative responses, 5xx and live weight")
    func countersPerCluster() async throws {
        let folder = try TemporaryDirectory.make("sampler")
        let blue = try await NginxBackend.start(name: "blue-1", in: folder)
        let green = try await NginxBackend.start(name: "green-1", in: folder)
        defer { blue.stopInBackground(); green.stopInBackground() }
        let haproxy = try await HAProxyServer.start(servers: [.init(name: "blue-1", address: blue.address, weight: 1),
                                                              .init(name: "green-1", address: green.address, weight: 1)], in: folder)
        defer { haproxy.stopInBackground() }
        let logger = Logger(label: "test.sampler")
        let driver = try HAProxyLoadBalancer(spec: HAProxySpec(socket: haproxy.socketPath, backend: "app"),
                                             from: ClusterServers(cluster: "blue", servers: ["blue-1"]),
                                             to: ClusterServers(cluster: "green", servers: ["green-1"]), logger: logger)
        let sampler = LoadBalancerSampler(router: driver, observer: driver)
        let before = try await sampler.sample(at: .seconds(1))
        try green.fail(true)
        let http = HTTPClient(logger: logger)
        for _ in 0..<20 { _ = try await http.get(haproxy.url) }
        let after = try await sampler.sample(at: .seconds(2))

        let b0 = try #require(before.clusters["blue"]), b1 = try #require(after.clusters["blue"])
        let g0 = try #require(before.clusters["green"]), g1 = try #require(after.clusters["green"])
        #expect(b1.responses - b0.responses == 10)
        #expect(b1.responses2xx - b0.responses2xx == 10)
        #expect(g1.responses - g0.responses == 10)
        #expect(g1.responses5xx - g0.responses5xx == 10)
        #expect(b1.weight == 1 && g1.weight == 1)
        let window = try #require(TrafficWindow(from: g0, at: before.at, to: g1, at: after.at))
        #expect(window.ratio5xx == 1)
    }
}
