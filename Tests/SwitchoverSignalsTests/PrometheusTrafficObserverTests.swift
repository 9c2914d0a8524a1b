import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverNet
import SwitchoverSignals
import SwitchoverTestKit
import Testing

/// `traffic.prometheus` against a real Prometheus scraping a real HAProxy's built-in exporter,
/// in front of real nginx servers blue-1 and green-1, under load from hey. The queries select
/// each cluster's servers by name (`server=~"$cluster-.*"`), as a policy over HAProxy's
/// per-server counters would.
@Suite
struct PrometheusTrafficObserverTests {
    let logger = Logger(label: "test.traffic")

    static func spec(_ url: URL) -> PrometheusTraffic {
        PrometheusTraffic(url: url,
                          requests: #"sum(haproxy_server_http_responses_total{proxy="app",server=~"$cluster-.*"})"#,
                          errors: #"sum(haproxy_server_http_responses_total{proxy="app",server=~"$cluster-.*",code="5xx"})"#,
                          activeSessions: #"sum(haproxy_server_current_sessions{proxy="app",server=~"$cluster-.*"})"#)
    }

    func observer(_ spec: PrometheusTraffic, deadline: Duration = .seconds(1)) -> PrometheusTrafficObserver {
        PrometheusTrafficObserver(spec: spec, from: "blue", to: "green",
                                  client: PrometheusQuerying(client: HTTPClient(logger: logger), connectTimeout: deadline, timeout: deadline))
    }

    func sample(_ observer: PrometheusTrafficObserver) async throws -> LoadBalancerSample {
        let stats = try await observer.stats()
        var sample = LoadBalancerSampler.sample(stats, weights: [:], at: Instant(millisecondsSinceEpoch: Int64(Date().timeIntervalSince1970 * 1000)))
        sample.instances = stats.instances?.mapValues {
            InstanceCounters(process: $0.identity.instance, clusters: LoadBalancerSampler.sample($0, weights: [:], at: sample.at).clusters)
        }
        return sample
    }

    /// Polls until both clusters' requests, as Prometheus last scraped them, add up to `total`.
    func waitForRequests(_ observer: PrometheusTrafficObserver, total: Int64) async throws -> LoadBalancerSample {
        let deadline = ContinuousClock.now + .seconds(20)
        var last: LoadBalancerSample?
        while ContinuousClock.now < deadline {
            // Prometheus answers 503 until its storage is ready: a failed sample, asked again.
            guard let sample = try? await sample(observer) else {
                try await Task.sleep(for: .milliseconds(250))
                continue
            }
            last = sample
            if (sample.clusters["blue"]?.responses ?? 0) + (sample.clusters["green"]?.responses ?? 0) == total { return sample }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw TestKitError("Prometheus never showed \(total) requests: \(String(describing: last?.clusters))")
    }

    @Test("a green that answers 503 shows up as errors for green only, and the load-balancer gate fails it through PromQL")
    func greenErrorsAreGreens() async throws {
        let folder = try TemporaryDirectory.make("traffic")
        async let blueStart = NginxBackend.start(name: "blue-1", in: folder)
        async let greenStart = NginxBackend.start(name: "green-1", in: folder)
        let (blue, green) = try await (blueStart, greenStart)
        defer { blue.stopInBackground(); green.stopInBackground() }
        let haproxy = try await HAProxyServer.start(servers: [.init(name: "blue-1", address: blue.address, weight: 1),
                                                              .init(name: "green-1", address: green.address, weight: 1)], in: folder)
        defer { haproxy.stopInBackground() }
        let prometheus = try await PrometheusServer.start(target: "127.0.0.1:\(haproxy.metricsPort)", interval: "1s", in: folder)
        defer { prometheus.stopInBackground() }
        let observer = observer(Self.spec(prometheus.url))
        let before = try await waitForRequests(observer, total: 0)
        #expect(before.clusters["green"]?.activeSessions == 0)

        try green.fail(true)
        let load = try await Load.hey(haproxy.url, requests: 200, concurrency: 10)
        #expect(load.responses == 200, "\(load.statusCounts)")
        let after = try await waitForRequests(observer, total: 200).rebased(onto: before)

        let b = try #require(after.clusters["blue"]), g = try #require(after.clusters["green"])
        // Round robin over weights 1 and 1: each about half; what hey saw is what Prometheus counted.
        #expect(b.responses > 50 && g.responses > 50, "\(after.clusters)")
        #expect(g.responses5xx == g.responses && b.responses5xx == 0, "\(after.clusters)")
        #expect(Int(g.responses5xx) == load.statusCounts[503], "\(load.statusCounts) \(after.clusters)")
        #expect(b.responses2xx == b.responses && g.responses2xx == 0)

        // The gates read these counters unchanged.
        let greenGate = LoadBalancerGate(cluster: "green", service: nil, max5xxRatio: 0.05, minRequests: 5, maxMeanResponseTime: nil)
        let blueGate = LoadBalancerGate(cluster: "blue", service: nil, max5xxRatio: 0.05, minRequests: 5, maxMeanResponseTime: nil)
        #expect(greenGate.judge(previous: before, current: after).verdict == .fail)
        #expect(blueGate.judge(previous: before, current: after).verdict == .pass)

        // HAProxy restarted: its counters start again from 0, and Prometheus's sum drops. The
        // rebased sample does not go back: the new process's requests are added on top.
        try green.fail(false)
        try await haproxy.restart()
        let second = try await Load.hey(haproxy.url, requests: 40, concurrency: 4)
        #expect(second.responses == 40)
        let raw = try await waitForRequests(observer, total: 40)
        let rebased = raw.rebased(onto: after)
        let b2 = try #require(rebased.clusters["blue"]), g2 = try #require(rebased.clusters["green"])
        #expect(b2.responses + g2.responses == 240, "\(rebased.clusters)")
        #expect(g2.responses5xx == g.responses5xx, "no new errors: \(rebased.clusters)")
        let window = try #require(TrafficWindow(from: g, at: after.at, to: g2, at: rebased.at))
        #expect(window.responses == g2.responses - g.responses && window.responses5xx == 0)
        #expect(greenGate.judge(previous: after, current: rebased).verdict == .pass)
    }

    @Test("an empty vector is 0 requests; a failed or ambiguous query fails the sample, never reads as 0")
    func emptyIsZeroFailureIsFailure() async throws {
        let folder = try TemporaryDirectory.make("traffic")
        let haproxy = try await HAProxyServer.start(servers: [.init(name: "blue-1", address: "127.0.0.1:9", weight: 1),
                                                              .init(name: "green-1", address: "127.0.0.1:9", weight: 0)], in: folder)
        defer { haproxy.stopInBackground() }
        let prometheus = try await PrometheusServer.start(target: "127.0.0.1:\(haproxy.metricsPort)", interval: "1s", in: folder)
        defer { prometheus.stopInBackground() }
        let client = PrometheusQuerying(client: HTTPClient(logger: logger))
        let scraped = await Wait.until(timeout: 20, every: .milliseconds(200)) {
            ((try? await client.query(base: prometheus.url, "up")) ?? []).isEmpty == false
        }
        try #require(scraped, "Prometheus never scraped HAProxy")

        // Prometheus answered: no series matched the cluster (nothing counted yet).
        let none = PrometheusTraffic(url: prometheus.url, requests: #"sum(no_such_metric{cluster="$cluster"})"#,
                                     errors: #"no_such_metric{cluster="$cluster"}"#, activeSessions: nil)
        let empty = try await observer(none).stats()
        #expect(empty.clusters["green"]?.totalRequests == 0 && empty.clusters["blue"]?.responses5xx == 0)

        // A bad query: Prometheus's own error, not a 0.
        var bad = none
        bad.errors = #"no_such_metric{cluster="$cluster"}["#
        await #expect(throws: PrometheusError.self) { try await observer(bad).stats() }
        // Several series for one cluster (not summed): which is the cluster's? An error.
        var several = none
        several.requests = #"haproxy_server_http_responses_total{proxy="app",server=~"$cluster-.*"}"#
        do {
            _ = try await observer(several).stats()
            Issue.record("several series were read as one count")
        } catch let error as PrometheusError {
            #expect(error.detail.contains("a traffic query must return one (sum it)"), "\(error)")
        }

        // Prometheus gone: the sample fails, quickly.
        let url = prometheus.url
        await prometheus.stop()
        await #expect(throws: PrometheusError.self) { try await observer(Self.spec(url)).stats() }
    }

    @Test("a Prometheus that never answers fails the sample within the deadline, shorter than the sampling period")
    func silentPrometheusFailsWithinTheDeadline() async throws {
        let listener = try SilentListener()
        let spec = Self.spec(URL(string: "http://127.0.0.1:\(listener.port)")!)
        let deadline = PrometheusTrafficObserver.deadline(sampling: .milliseconds(250))
        #expect(deadline == .milliseconds(200))
        let observer = observer(spec, deadline: deadline)
        let (failed, elapsed) = await Stopwatch.measure { () async -> Bool in
            do { _ = try await observer.stats(); return false } catch { return true }
        }
        #expect(failed)
        #expect(elapsed < .milliseconds(1000), "took \(elapsed)")
    }
}
