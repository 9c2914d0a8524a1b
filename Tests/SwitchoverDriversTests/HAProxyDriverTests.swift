import Foundation
import SwitchoverCore
@testable import SwitchoverDrivers
import SwitchoverTestKit
import Testing

/// A real HAProxy in front of two nginx per cluster.
final class HAProxyRig {
    let directory: URL
    let blue: Backends
    let green: Backends
    let haproxy: HAProxyServer

    init(tcpAdmin: Bool = false) async throws {
        let directory = try TemporaryDirectory.make("haproxy-driver")
        self.directory = directory
        async let blue1 = NginxBackend.start(name: "blue-1", in: directory)
        async let blue2 = NginxBackend.start(name: "blue-2", in: directory)
        async let green1 = NginxBackend.start(name: "green-1", in: directory)
        async let green2 = NginxBackend.start(name: "green-2", in: directory)
        blue = Backends(cluster: "blue", servers: try await [blue1, blue2])
        green = Backends(cluster: "green", servers: try await [green1, green2])
        let servers = (blue.servers + green.servers).map {
            HAProxyServer.Server(name: $0.name, address: $0.address, weight: $0.name.hasPrefix("blue") ? 100 : 0)
        }
        haproxy = try await HAProxyServer.start(servers: servers, tcpAdmin: tcpAdmin, in: directory)
    }

    func driver(from: [String]? = nil, to: [String]? = nil, socket: String? = nil) throws -> HAProxyLoadBalancer {
        try HAProxyLoadBalancer(spec: HAProxySpec(socket: socket ?? haproxy.socketPath, backend: haproxy.backend),
                                from: ClusterServers(cluster: "blue", servers: from ?? blue.servers.map(\.name)),
                                to: ClusterServers(cluster: "green", servers: to ?? green.servers.map(\.name)),
                                logger: testLogger)
    }

    deinit {
        haproxy.stopInBackground()
        (blue.servers + green.servers).forEach { $0.stopInBackground() }
        try? FileManager.default.removeItem(at: directory)
    }
}

@Suite
struct HAProxyDriverTests {
    @Test("applied shares are what reaches the backends, within 1 point over 2,000 requests")
    func trafficMatchesAppliedShares() async throws {
        let rig = try await HAProxyRig()
        let lb = try rig.driver()
        for percent in [10.0, 50, 99, 100] {
            let live = try await lb.apply(percentToTarget: percent)
            let expected = lb.translation.weights(percentToTarget: percent, from: lb.fromCluster.servers,
                                                  to: lb.toCluster.servers)
            #expect(live.assignment == expected)
            #expect(live.shares["green"] == expected.effectivePercentToTarget)
            let measured = try await measuredPercent(to: rig.green, from: rig.blue, url: rig.haproxy.url, requests: 2000)
            print("haproxy: applied \(live.effectivePercentToTarget)% to green, measured \(measured.percent)% of \(measured.total)")
            #expect(abs(measured.percent - live.effectivePercentToTarget) <= 1.0,
                    "at \(percent)% applied (effective \(live.effectivePercentToTarget)%), green got \(measured.percent)%")
        }
    }

    @Test("the live weights are read from HAProxy, with its configured weights and identity")
    func currentWeightsReadsHAProxy() async throws {
        let rig = try await HAProxyRig(tcpAdmin: true)
        // Over TCP this time, as `tcp://host:port`.
        let lb = try rig.driver(socket: rig.haproxy.tcpAdminAddress!)
        let initial = try await lb.currentWeights()
        #expect(initial.assignment.from.map(\.weight) == [100, 100])
        #expect(initial.assignment.to.map(\.weight) == [0, 0])
        #expect(initial.shares == ["blue": 100, "green": 0])
        #expect(initial.identity.instance == "pid \(rig.haproxy.pid)")
        #expect(initial.drift.isEmpty)
        let applied = try await lb.apply(percentToTarget: 25)
        #expect(applied.assignment.to.allSatisfy { $0.weight > 0 })
        #expect(applied.configured?.map(\.weight) == [100, 100, 0, 0], "srv_iweight stays the config's")
        let again = try await lb.currentWeights()
        #expect(again.assignment == applied.assignment)
        #expect(again.drift.isEmpty && !again.instance.isRestart(of: initial.instance))
    }

    @Test("a HAProxy restarted behind the driver's back is drift on the next read")
    func restartIsDrift() async throws {
        let rig = try await HAProxyRig()
        let lb = try rig.driver()
        let applied = try await lb.apply(percentToTarget: 50)
        let oldPid = rig.haproxy.pid
        try await rig.haproxy.restart()
        #expect(rig.haproxy.pid != oldPid)
        let live = try await lb.currentWeights()
        #expect(live.instance.isRestart(of: applied.instance))
        #expect(live.identity.instance == "pid \(rig.haproxy.pid)")
        #expect(live.assignment.all.map(\.weight) == [100, 100, 0, 0], "back to the config's weights")
        #expect(Set(live.drift.map(\.server)) == Set(applied.assignment.all.filter { $0.weight != (rig.blue.servers.map(\.name).contains($0.server) ? 100 : 0) }.map(\.server)))
        #expect(live.drift.contains { $0.server == "green-1" && $0.applied == applied.assignment.to[0].weight && $0.live == 0 })
        // Re-applying repairs it; the restart has been reported once.
        let repaired = try await lb.apply(percentToTarget: 50)
        #expect(repaired.drift.isEmpty && !repaired.instance.isRestart(of: live.instance))
    }

    @Test("a server HAProxy does not have is an error naming it, and nothing is written")
    func unknownServerIsNamed() async throws {
        let rig = try await HAProxyRig()
        let lb = try rig.driver(to: ["green-1", "green-9"])
        let before = try await rig.driver().currentWeights()
        let error = try await #require(throws: LoadBalancerError.self) { try await lb.apply(percentToTarget: 50) }
        #expect(error.code == .unknownServer)
        #expect(error.server == "green-9")
        #expect(error.description.contains("green-9"))
        let after = try await rig.driver().currentWeights()
        #expect(after.assignment == before.assignment)
    }

    @Test("a write HAProxy refuses names the server and HAProxy's answer")
    func refusedWeightIsNamed() async throws {
        let rig = try await HAProxyRig()
        let lb = try rig.driver()
        let bad = WeightAssignment(from: [ServerWeight(server: "blue-1", weight: 300), ServerWeight(server: "blue-2", weight: 1)],
                                   to: [ServerWeight(server: "green-1", weight: 1), ServerWeight(server: "green-2", weight: 1)])
        let error = try await #require(throws: LoadBalancerError.self) { try await lb.apply(bad) }
        #expect(error.code == .invalidWeight)
        #expect(error.server == "blue-1")
    }

    @Test("stats count requests and 5xx per cluster")
    func statsCountTraffic() async throws {
        let rig = try await HAProxyRig()
        let lb = try rig.driver()
        try await lb.apply(percentToTarget: 50)
        let before = try await lb.stats()
        try await Load.hey(rig.haproxy.url, requests: 400, concurrency: 10)
        let middle = try await lb.stats()
        let blue0 = try #require(before.clusters["blue"]), green0 = try #require(before.clusters["green"])
        let blue1 = try #require(middle.clusters["blue"]), green1 = try #require(middle.clusters["green"])
        #expect(blue1.totalRequests - blue0.totalRequests == 200)
        #expect(green1.totalRequests - green0.totalRequests == 200)
        #expect(green1.responses2xx - green0.responses2xx == 200)
        #expect(green1.responses5xx == green0.responses5xx)
        #expect(green1.totalSessions > green0.totalSessions)
        #expect(green1.meanResponseTime != nil)
        #expect(green1.servers.map(\.server) == ["green-1", "green-2"])
        #expect(green1.servers.allSatisfy { $0.serving })

        for server in rig.green.servers { try server.fail(true) }
        try await Load.hey(rig.haproxy.url, requests: 400, concurrency: 10)
        let after = try await lb.stats()
        let blue2 = try #require(after.clusters["blue"]), green2 = try #require(after.clusters["green"])
        #expect(green2.responses5xx - green1.responses5xx == 200)
        #expect(green2.responses2xx == green1.responses2xx)
        #expect(blue2.responses5xx == blue1.responses5xx)
        #expect(blue2.responses2xx - blue1.responses2xx == 200)
    }

    @Test("drain and ready are set per cluster and read back")
    func drainAndReady() async throws {
        let rig = try await HAProxyRig()
        let lb = try rig.driver()
        try await lb.setDrain(cluster: "blue")
        let drained = try await lb.stats()
        #expect(drained.clusters["blue"]?.servers.allSatisfy { $0.status == "DRAIN" && !$0.serving } == true)
        #expect(drained.clusters["green"]?.servers.allSatisfy { $0.serving } == true)
        try await lb.setReady(cluster: "blue")
        let ready = try await lb.stats()
        #expect(ready.clusters["blue"]?.servers.allSatisfy { $0.serving } == true)
        let error = try await #require(throws: LoadBalancerError.self) { try await lb.setDrain(cluster: "purple") }
        #expect(error.code == .unknownCluster)
    }

    @Test("shutdownSessions closes the downloads open to blue's servers and leaves green's")
    func shutdownSessions() async throws {
        let rig = try await HAProxyRig()
        let lb = try rig.driver()
        try await lb.apply(percentToTarget: 50)
        // Long downloads (GET /slow, 1 KB/s) until each cluster has one open.
        var held: [HeldConnection] = []
        defer { held.forEach { $0.close() } }
        let deadline = Date().addingTimeInterval(10)
        var stats = try await lb.stats()
        while (stats.clusters["blue"]?.activeSessions ?? 0) == 0 || (stats.clusters["green"]?.activeSessions ?? 0) == 0 {
            try #require(Date() < deadline, "no download open on both clusters: \(stats.clusters)")
            held.append(try HeldConnection(port: rig.haproxy.port, send: "GET /slow HTTP/1.1\r\nHost: rig\r\n\r\n"))
            try await Task.sleep(for: .milliseconds(200))
            stats = try await lb.stats()
        }
        let greenBefore = stats.clusters["green"]?.activeSessions ?? 0
        try await lb.shutdownSessions(cluster: "blue")
        try await Task.sleep(for: .milliseconds(300))
        let after = try await lb.stats()
        #expect(after.clusters["blue"]?.activeSessions == 0)
        #expect(after.clusters["green"]?.activeSessions == greenBefore, "green's downloads are untouched")
        let error = try await #require(throws: LoadBalancerError.self) { try await lb.shutdownSessions(cluster: "purple") }
        #expect(error.code == .unknownCluster)
    }

    @Test("a write split over several command lines lands whole")
    func chunkedWrite() async throws {
        let rig = try await HAProxyRig()
        // 40 bytes a line: one `set server` command (about 32 bytes) per round trip.
        let lb = try HAProxyLoadBalancer(spec: HAProxySpec(socket: rig.haproxy.socketPath, backend: "app"),
                                         from: ClusterServers(cluster: "blue", servers: ["blue-1", "blue-2"]),
                                         to: ClusterServers(cluster: "green", servers: ["green-1", "green-2"]),
                                         logger: testLogger, maxLineBytes: 40)
        let assignment = lb.translation.weights(percentToTarget: 30, from: ["blue-1", "blue-2"], to: ["green-1", "green-2"])
        #expect(lb.commandLines(for: assignment).count == 6)
        let live = try await lb.apply(assignment)
        #expect(live.assignment == assignment)
    }

    @Test("an unreachable socket is an error naming the address")
    func unreachableSocket() async throws {
        let lb = try HAProxyLoadBalancer(spec: HAProxySpec(socket: "/nonexistent/admin.sock", backend: "app"),
                                         from: ClusterServers(cluster: "blue", servers: ["b"]),
                                         to: ClusterServers(cluster: "green", servers: ["g"]), logger: testLogger)
        let error = try await #require(throws: LoadBalancerError.self) { try await lb.currentWeights() }
        #expect(error.code == .unreachable)
        #expect(error.description.contains("/nonexistent/admin.sock"))
    }

    @Test("weights are written raised first: from blue 256 / green 0 to 100% green, green is raised before blue is lowered (never all 0)")
    func raisedBeforeLowered() {
        let to100 = WeightAssignment(from: [ServerWeight(server: "blue-1", weight: 0), ServerWeight(server: "blue-2", weight: 0)],
                                     to: [ServerWeight(server: "green-1", weight: 256)])
        let writes = HAProxyLoadBalancer.writes(to100, before: ["blue-1": 128, "blue-2": 128, "green-1": 0])
        #expect(writes.map(\.server) == ["green-1", "blue-1", "blue-2"])
        let unchanged = HAProxyLoadBalancer.writes(to100, before: ["blue-1": 0, "blue-2": 128, "green-1": 256])
        #expect(unchanged.map(\.server) == ["blue-2"], "only what differs is written")
    }
}
