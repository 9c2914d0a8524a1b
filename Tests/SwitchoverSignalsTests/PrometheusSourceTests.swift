import Foundation
import Logging
import SwitchoverCore
import SwitchoverNet
import SwitchoverSignals
import SwitchoverTestKit
import Testing

/// The Prometheus gate against a real Prometheus (Debian's `prometheus`) scraping a real
/// HAProxy's built-in exporter, and against one that is stopped or never answers.
@Suite
struct PrometheusSourceTests {
    let logger = Logger(label: "test.prometheus")

    func client(timeout: Duration = .seconds(2)) -> PrometheusQuerying {
        PrometheusQuerying(client: HTTPClient(logger: logger), connectTimeout: .seconds(1), timeout: timeout)
    }

    func source(_ query: String, url: URL, min: Double? = nil, max: Double? = nil,
                timeout: Duration = .seconds(2)) -> PrometheusGateSource {
        PrometheusGateSource(gate: "g", spec: PrometheusGate(url: url, query: query, min: min, max: max),
                             client: client(timeout: timeout))
    }

    /// Waits until Prometheus has scraped its target once (`up` has a sample).
    func waitForFirstScrape(_ url: URL) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if let values = try? await client().query(base: url, "up"), !values.isEmpty { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        Issue.record("Prometheus at \(url) never scraped its target")
    }

    @Test("a single-sample vector is judged against min and max; empty is inconclusive; a bad query is an error")
    func realPrometheusOutcomes() async throws {
        let folder = try TemporaryDirectory.make("signals")
        let haproxy = try await HAProxyServer.start(servers: [.init(name: "blue-1", address: "127.0.0.1:9", weight: 1)], in: folder)
        defer { haproxy.stopInBackground() }
        let prometheus = try await PrometheusServer.start(target: "127.0.0.1:\(haproxy.metricsPort)", interval: "1s", in: folder)
        defer { prometheus.stopInBackground() }
        try await waitForFirstScrape(prometheus.url)

        let pass = await source("up", url: prometheus.url, min: 1, max: 1).evaluate()
        #expect(pass.verdict == .pass, "\(pass.detail)")
        #expect(pass.value == 1)

        let fail = await source("up", url: prometheus.url, max: 0.5).evaluate()
        #expect(fail.verdict == .fail, "\(fail.detail)")

        // A scalar result, with characters that must be URL-encoded (+, spaces).
        let scalar = await source("scalar(up) + 1", url: prometheus.url, max: 2).evaluate()
        #expect(scalar.verdict == .pass && scalar.value == 2, "\(scalar.detail)")

        let empty = await source(#"up{job="no-such-job"}"#, url: prometheus.url, max: 1).evaluate()
        #expect(empty.verdict == .inconclusive, "\(empty.detail)")

        let nan = await source("scalar(vector(0) / vector(0))", url: prometheus.url, max: 1).evaluate()
        #expect(nan.verdict == .inconclusive, "\(nan.detail)")

        let bad = await source("up[", url: prometheus.url, max: 1).evaluate()
        #expect(bad.verdict == .error)
        #expect(bad.detail.contains("bad_data"), "\(bad.detail)")

        // A query over HAProxy's own exporter, as a real gate would use.
        let exporter = await source(#"sum(haproxy_process_nbthread)"#, url: prometheus.url, min: 1).evaluate()
        #expect(exporter.verdict == .pass, "\(exporter.detail)")
    }

    @Test("a stopped Prometheus is an error outcome, returned fast")
    func stoppedPrometheus() async throws {
        let folder = try TemporaryDirectory.make("signals")
        let haproxy = try await HAProxyServer.start(servers: [.init(name: "blue-1", address: "127.0.0.1:9", weight: 1)], in: folder)
        defer { haproxy.stopInBackground() }
        let prometheus = try await PrometheusServer.start(target: "127.0.0.1:\(haproxy.metricsPort)", interval: "1s", in: folder)
        let url = prometheus.url
        try await waitForFirstScrape(url)
        await prometheus.stop()

        // Timed on the test kit's stopwatch thread, not the cooperative pool other suites share.
        let gate = source("up", url: url, max: 1)
        let (outcome, elapsed) = await Stopwatch.measure { await gate.evaluate() }
        #expect(outcome.verdict == .error)
        #expect(outcome.detail.contains("127.0.0.1:\(url.port!)"), "\(outcome.detail)")
        #expect(elapsed < .seconds(1), "took \(elapsed)")
    }

    @Test("a Prometheus that never answers is an error within the query timeout")
    func silentPrometheus() async throws {
        let listener = try SilentListener()
        let url = URL(string: "http://127.0.0.1:\(listener.port)")!
        let gate = source("up", url: url, max: 1, timeout: .milliseconds(500))
        let (outcome, elapsed) = await Stopwatch.measure { await gate.evaluate() }
        #expect(outcome.verdict == .error, "\(outcome.detail)")
        #expect(elapsed < .milliseconds(1500), "took \(elapsed)")
    }

    /// Issue 11, item 9: a proxy in front of Prometheus often wants `?token=...`. The URL
    /// used to be built as text, `...?token=X/api/v1/query?query=...`, which Prometheus answered
    /// with a 302 (the run paused on gate errors), and the token was printed wherever the URL was.
    @Test("a gate URL with a query string reaches the API, with or without a path, and its token is never shown")
    func queryStringsInTheGateURL() async throws {
        let folder = try TemporaryDirectory.make("signals")
        let haproxy = try await HAProxyServer.start(servers: [.init(name: "blue-1", address: "127.0.0.1:9", weight: 1)], in: folder)
        defer { haproxy.stopInBackground() }
        let prometheus = try await PrometheusServer.start(target: "127.0.0.1:\(haproxy.metricsPort)", interval: "1s", in: folder)
        defer { prometheus.stopInBackground() }
        let prefixed = try await PrometheusServer.start(target: "127.0.0.1:\(haproxy.metricsPort)", interval: "1s",
                                                        routePrefix: "/prom", in: folder.appendingPathComponent("prefixed"))
        defer { prefixed.stopInBackground() }
        try await waitForFirstScrape(prometheus.url)
        try await waitForFirstScrape(prefixed.url)

        // Prometheus ignores parameters it does not know, as the proxy's would be.
        let bases = ["http://127.0.0.1:\(prometheus.port)?token=secret",
                     "http://127.0.0.1:\(prometheus.port)/?token=secret&api_key=secret",
                     "http://127.0.0.1:\(prefixed.port)/prom?access_token=secret",
                     "http://127.0.0.1:\(prefixed.port)/prom/?Signature=secret"]
        for base in bases {
            let url = try #require(URL(string: base))
            let pass = await source("up", url: url, min: 1, max: 1).evaluate()
            #expect(pass.verdict == .pass, "\(base): \(pass.detail)")
            #expect(!pass.detail.contains("secret"), "\(pass.detail)")

            // An error names Prometheus's address, never the token.
            let bad = await source("up[", url: url, max: 1).evaluate()
            #expect(bad.verdict == .error && bad.detail.contains("bad_data"), "\(base): \(bad.detail)")
            #expect(bad.detail.contains("127.0.0.1:"), "\(bad.detail)")
            #expect(!bad.detail.contains("secret"), "\(bad.detail)")
        }

        // No answer at all: the detail carries curl's failed request, URL included.
        let stopped = try Loopback.freePort()
        let unreachable = await source("up", url: URL(string: "http://u:secret@127.0.0.1:\(stopped)/p?token=secret&x=1")!, max: 1).evaluate()
        #expect(unreachable.verdict == .error, "\(unreachable.detail)")
        #expect(unreachable.detail.contains("127.0.0.1:\(stopped)/p/api/v1/query?token=<redacted>&x=1&query=up"), "\(unreachable.detail)")
        #expect(!unreachable.detail.contains("secret"), "\(unreachable.detail)")
    }

    @Test("the query URL keeps the base's path and query parameters", arguments: [
        ("http://h:9090", "http://h:9090/api/v1/query?query=up"),
        ("http://h:9090/", "http://h:9090/api/v1/query?query=up"),
        ("http://h:9090?token=X", "http://h:9090/api/v1/query?token=X&query=up"),
        ("http://h:9090/?token=X", "http://h:9090/api/v1/query?token=X&query=up"),
        ("http://h:9090/prefix?token=X", "http://h:9090/prefix/api/v1/query?token=X&query=up"),
        ("http://h:9090/prefix//?a=1&b=%2F", "http://h:9090/prefix/api/v1/query?a=1&b=%2F&query=up"),
        ("http://h:9090/p?query=other&t=1#frag", "http://h:9090/p/api/v1/query?t=1&query=up"),
        ("https://u:p@h/p", "https://u:p@h/p/api/v1/query?query=up"),
    ])
    func queryURLs(_ base: String, _ expected: String) throws {
        #expect(PrometheusQuerying.queryURL(base: try #require(URL(string: base)), query: "up") == expected)
    }

    @Test("queries are percent-encoded so PromQL operators survive")
    func queryEncoding() {
        let url = PrometheusQuerying.queryURL(base: URL(string: "http://127.0.0.1:9090/")!,
                                              query: #"sum(rate(x{a="b c"}[1m])) + 1 & 2"#)
        #expect(url == "http://127.0.0.1:9090/api/v1/query?query=sum%28rate%28x%7Ba%3D%22b%20c%22%7D%5B1m%5D%29%29%20%2B%201%20%26%202")
    }
}
