import Foundation
import SwitchoverTestKit
import Testing

@Suite
struct LauncherTests {
    @Test("Prometheus from the kit scrapes HAProxy's metrics frontend")
    func prometheusScrapesHAProxy() async throws {
        let directory = try TemporaryDirectory.make("launchers")
        defer { try? FileManager.default.removeItem(at: directory) }
        let haproxy = try await HAProxyServer.start(servers: [.init(name: "blue-1", address: "127.0.0.1:9", weight: 1)], in: directory)
        defer { haproxy.stopInBackground() }
        let prometheus = try await PrometheusServer.start(target: "127.0.0.1:\(haproxy.metricsPort)", interval: "1s", in: directory)
        defer { prometheus.stopInBackground() }
        var answer = ""
        for _ in 0..<100 {
            answer = try await Loopback.httpExchange(
                port: prometheus.port,
                request: "GET /api/v1/query?query=haproxy_process_uptime_seconds HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            if answer.contains("\"result\":[{") { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(answer.contains("haproxy_process_uptime_seconds"), "Prometheus never had HAProxy's uptime: \(answer)")
    }

    @Test("a backend answers with its name, and 503 while failing")
    func nginxBackendFaultInjection() async throws {
        let directory = try TemporaryDirectory.make("launchers")
        defer { try? FileManager.default.removeItem(at: directory) }
        let backend = try await NginxBackend.start(name: "blue-7", in: directory)
        defer { backend.stopInBackground() }
        func get() async throws -> String {
            try await Loopback.httpExchange(port: backend.port, request: "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        }
        let ok = try await get()
        #expect(ok.hasPrefix("HTTP/1.1 200") && ok.hasSuffix("blue-7\n"))
        try backend.fail(true)
        #expect(try await get().hasPrefix("HTTP/1.1 503"))
        try backend.fail(false)
        #expect(try await get().hasPrefix("HTTP/1.1 200"))
        #expect(try backend.requestCount() == 3)
    }
}
