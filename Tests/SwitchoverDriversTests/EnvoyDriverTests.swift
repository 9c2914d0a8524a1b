import Foundation
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverTestKit
import Testing

/// A real Envoy with file-based RDS in front of one nginx per cluster.
final class EnvoyRig {
    let directory: URL
    let blue: Backends
    let green: Backends
    let envoy: EnvoyServer

    init() async throws {
        let directory = try TemporaryDirectory.make("envoy-driver")
        self.directory = directory
        async let blue1 = NginxBackend.start(name: "blue-1", in: directory)
        async let green1 = NginxBackend.start(name: "green-1", in: directory)
        blue = Backends(cluster: "blue", servers: [try await blue1])
        green = Backends(cluster: "green", servers: [try await green1])
        envoy = try await EnvoyServer.start(clusters: [(name: "blue", endpoints: blue.servers.map(\.address)),
                                                       (name: "green", endpoints: green.servers.map(\.address))],
                                            initialWeights: [(cluster: "blue", weight: 100), (cluster: "green", weight: 0)],
                                            in: directory)
    }

    var spec: EnvoySpec {
        EnvoySpec(routeFile: envoy.routeFile.path, routeName: envoy.routeName, admin: envoy.adminURL)
    }

    func driver(to: [String] = ["green"]) throws -> EnvoyLoadBalancer {
        try EnvoyLoadBalancer(spec: spec, from: ClusterServers(cluster: "blue", servers: ["blue"]),
                              to: ClusterServers(cluster: "green", servers: to), logger: testLogger)
    }

    deinit {
        envoy.stopInBackground()
        (blue.servers + green.servers).forEach { $0.stopInBackground() }
        try? FileManager.default.removeItem(at: directory)
    }
}

@Suite
struct EnvoyDriverTests {
    /// Envoy picks a weighted cluster at random per request: over 2,000 requests at 50% one
    /// standard deviation is 1.1 points, so 3 points would fail about one run in 150 per step;
    /// 4,000 requests make it 0.8 (3.8 deviations).
    @Test("applied shares are what reaches the backends, within 3 points over 4,000 requests")
    func trafficMatchesAppliedShares() async throws {
        let rig = try await EnvoyRig()
        let lb = try rig.driver()
        let initial = try await lb.currentWeights()
        #expect(initial.identity.generation == "initial")
        #expect(initial.shares == ["blue": 100, "green": 0])
        for percent in [10.0, 50, 99, 100] {
            let live = try await lb.apply(percentToTarget: percent)
            let expected = lb.translation.weights(percentToTarget: percent, from: ["blue"], to: ["green"])
            #expect(live.assignment == expected)
            #expect(live.identity.generation?.hasPrefix("switchover-") == true)
            let measured = try await measuredPercent(to: rig.green, from: rig.blue, url: rig.envoy.url, requests: 4000)
            print("envoy: applied \(live.effectivePercentToTarget)% to green, measured \(measured.percent)% of \(measured.total)")
            #expect(abs(measured.percent - live.effectivePercentToTarget) <= 3.0,
                    "at \(percent)% applied (effective \(live.effectivePercentToTarget)%), green got \(measured.percent)%")
        }
        let reread = try await lb.currentWeights()
        #expect(reread.assignment.to == [ServerWeight(server: "green", weight: 10_000)])
        #expect(reread.drift.isEmpty)
    }

    @Test("a route Envoy rejects is an error naming the cluster, and the previous weights stay live")
    func rejectedRouteKeepsPreviousWeights() async throws {
        let rig = try await EnvoyRig()
        let lb = try rig.driver()
        let good = try await lb.apply(percentToTarget: 50)
        let goodFile = try Data(contentsOf: rig.envoy.routeFile)
        // "greeen" is no Envoy cluster: with validate_clusters the route table is rejected.
        let typo = try rig.driver(to: ["greeen"])
        let error = try await #require(throws: LoadBalancerError.self) { try await typo.apply(percentToTarget: 10) }
        #expect(error.code == .rejected)
        #expect(error.server == "greeen")
        #expect(error.description.contains("greeen"))
        let live = try await lb.currentWeights()
        #expect(live.identity.generation == good.identity.generation)
        #expect(live.assignment == good.assignment)
        #expect(try Data(contentsOf: rig.envoy.routeFile) == goodFile, "the last good route file is put back")
        // Envoy picks at random: 4,000 requests put 3 points at 3.8 standard deviations.
        let measured = try await measuredPercent(to: rig.green, from: rig.blue, url: rig.envoy.url, requests: 4000)
        #expect(abs(measured.percent - 50) <= 3.0, "traffic still splits 50/50: green got \(measured.percent)%")
    }

    @Test("a route file changed behind the driver's back is drift")
    func foreignRouteIsDrift() async throws {
        let rig = try await EnvoyRig()
        let lb = try rig.driver()
        try await lb.apply(percentToTarget: 25)
        let foreign = rig.envoy.directory.appendingPathComponent("foreign.yaml")
        try EnvoyServer.routeYAML(name: rig.envoy.routeName, version: "by-hand",
                                  weights: [(cluster: "blue", weight: 1), (cluster: "green", weight: 1)])
            .write(to: foreign, atomically: false, encoding: .utf8)
        #expect(rename(foreign.path, rig.envoy.routeFile.path) == 0)
        var live = try await lb.currentWeights()
        for _ in 0..<200 where live.identity.generation != "by-hand" {
            try await Task.sleep(for: .milliseconds(10))
            live = try await lb.currentWeights()
        }
        #expect(live.identity.generation == "by-hand")
        #expect(live.drift.map(\.server) == ["blue", "green"])
        #expect(live.effectivePercentToTarget == 50)
    }

    @Test("a restarted Envoy is a restart on the next read, even within the same second")
    func restartIsSeen() async throws {
        let rig = try await EnvoyRig()
        let lb = try rig.driver()
        let applied = try await lb.apply(percentToTarget: 50)
        let oldPid = rig.envoy.pid
        try await rig.envoy.restart()
        #expect(rig.envoy.pid != oldPid)
        let live = try await lb.currentWeights()
        #expect(live.instance.isRestart(of: applied.instance), "identity before \(applied.identity), after \(live.identity)")
        // The route file survived the restart, so the weights did too: no weight drift.
        #expect(live.assignment == applied.assignment)
        #expect(live.drift.isEmpty)
        let again = try await lb.currentWeights()
        #expect(!again.instance.isRestart(of: live.instance), "the next read is the same process")
    }

    @Test("stats count requests and 5xx per cluster")
    func statsCountTraffic() async throws {
        let rig = try await EnvoyRig()
        let lb = try rig.driver()
        try await lb.apply(percentToTarget: 50)
        let before = try await lb.stats()
        let result = try await Load.hey(rig.envoy.url, requests: 400, concurrency: 10)
        let blueServed = try rig.blue.count(), greenServed = try rig.green.count()
        // Envoy merges histograms at each stats flush (0.5 s in the kit's bootstrap).
        var middle = try await lb.stats()
        for _ in 0..<40 where middle.clusters["green"]?.meanResponseTime == nil {
            try await Task.sleep(for: .milliseconds(100))
            middle = try await lb.stats()
        }
        let blue0 = try #require(before.clusters["blue"]), green0 = try #require(before.clusters["green"])
        let blue1 = try #require(middle.clusters["blue"]), green1 = try #require(middle.clusters["green"])
        #expect(result.statusCounts[200] == 400)
        #expect(blue1.totalRequests - blue0.totalRequests == blueServed)
        #expect(green1.totalRequests - green0.totalRequests == greenServed)
        #expect(green1.responses2xx - green0.responses2xx == greenServed)
        #expect(green1.responses5xx == green0.responses5xx)
        #expect(green1.totalSessions >= 1)
        #expect(green1.meanResponseTime != nil)
        #expect(green1.servers == [ServerHealth(server: "green", status: "healthy", serving: true)])

        try rig.green.servers[0].fail(true)
        let second = try await Load.hey(rig.envoy.url, requests: 400, concurrency: 10)
        let after = try await lb.stats()
        let green2 = try #require(after.clusters["green"]), blue2 = try #require(after.clusters["blue"])
        #expect(green2.responses5xx - green1.responses5xx == second.statusCounts[503, default: 0])
        #expect(green2.responses5xx > green1.responses5xx)
        #expect(green2.responses2xx == green1.responses2xx)
        #expect(blue2.responses5xx == blue1.responses5xx)
    }

    /// The drain's meaning of a session (see `EnvoyLoadBalancer`): Envoy keeps its upstream
    /// connections pooled after the last request, and they must not hold a drained cluster.
    @Test("a session is a request in flight: Envoy's idle pooled connections are none, a slow download is one; only a new request moves totalSessions")
    func sessionsAreRequestsInFlight() async throws {
        let rig = try await EnvoyRig()
        let lb = try rig.driver()
        try await Load.hey(rig.envoy.url, requests: 200, concurrency: 4)  // all to blue: 100/0
        let idle = try #require(try await lb.stats().clusters["blue"])
        let envoyBlue = try await rig.envoy.clusterStats("blue")
        #expect(envoyBlue["upstream_cx_active", default: 0] > 0, "Envoy keeps its connections to blue open: \(envoyBlue)")
        #expect(idle.activeSessions == 0, "idle pooled connections are no session")
        #expect(idle.totalSessions == 200 && idle.totalRequests == 200)
        try await Task.sleep(for: .milliseconds(500))
        let still = try #require(try await lb.stats().clusters["blue"])
        #expect(still.totalSessions == idle.totalSessions && still.activeSessions == 0, "nothing new while nothing is sent")

        // 1 MB at 1 KB/s: in flight on blue for as long as the client stays.
        let held = try HeldConnection(port: rig.envoy.port, send: "GET /slow HTTP/1.1\r\nHost: rig\r\n\r\n")
        defer { held.close() }
        var busy = still
        for _ in 0..<100 where busy.activeSessions == 0 {
            try await Task.sleep(for: .milliseconds(50))
            busy = try #require(try await lb.stats().clusters["blue"])
        }
        #expect(busy.activeSessions == 1, "the download is a session")
        #expect(busy.totalSessions == idle.totalSessions + 1, "one new request")
        held.close()
        var done = busy
        for _ in 0..<100 where done.activeSessions > 0 {
            try await Task.sleep(for: .milliseconds(50))
            done = try #require(try await lb.stats().clusters["blue"])
        }
        #expect(done.activeSessions == 0, "the download ended")
        #expect(done.totalSessions == busy.totalSessions, "its end is no new request")
    }

    @Test("drain is unsupported on Envoy, and says so")
    func drainUnsupported() async throws {
        let rig = try await EnvoyRig()
        let lb = try rig.driver()
        let error = try await #require(throws: LoadBalancerError.self) { try await lb.setDrain(cluster: "blue") }
        #expect(error.code == .unsupported)
    }
}
