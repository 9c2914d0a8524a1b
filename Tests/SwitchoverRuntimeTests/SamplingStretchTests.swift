import Foundation
import SwitchoverStore
import SwitchoverTestKit
import Testing

/// A load balancer too large to sample within half the sampling period: the coordinator
/// stretches its period, says why and journals it, instead of sampling back to back.
@Suite struct SamplingStretchTests {
    @Test("a sample that takes more than half of a 10 ms period stretches the sampling, said and journaled; the run still promotes")
    func slowSamplesStretchTheSampling() async throws {
        let folder = try TemporaryDirectory.make("stretch")
        defer { try? FileManager.default.removeItem(at: folder) }
        // 2,000 servers at a closed port, no health checks: each sample reads and parses them
        // all, which takes far more than 5 ms.
        let blue = (0..<1_000).map { "blue-\($0)" }, green = (0..<1_000).map { "green-\($0)" }
        let haproxy = try await HAProxyServer.start(servers: blue.map { .init(name: $0, address: "127.0.0.1:9", weight: 256) }
                                                        + green.map { .init(name: $0, address: "127.0.0.1:9", weight: 0) },
                                                    in: folder)
        defer { haproxy.stopInBackground() }
        let trust = try await ConfigDocuments.sharedTrust(in: folder, clusters: ["blue", "green"])
        let clusters = [("blue", blue), ("green", green)].map { name, servers in
            ClusterDocument(name: name, rootCerts: trust[name]!.roots.path, certChain: trust[name]!.chain.path, servers: servers)
        }
        let policy = PolicyDocument(name: "stretch", loadBalancer: PolicyDocument.haproxy(socket: haproxy.socketPath),
                                    steps: [100], bake: "2s", interval: "1s", sampling: "10ms")
        try ConfigDocuments.write(clusters: clusters, policies: [policy], in: folder)
        let state = folder.appendingPathComponent("state/state.db").path
        let run = try await runSwitchover(["run", "blue", "green", "--policy", "stretch", "--until", "promoted",
                                           "--clusters", folder.appendingPathComponent("clusters").path,
                                           "--policies", folder.appendingPathComponent("policies").path, "--state", state],
                                          cwd: folder)
        #expect(run.exitCode == 0, "\(run.stdout) \(run.stderr)")
        #expect(run.stderr.contains("sampling stretched from 10ms"), "\(run.stderr.suffix(2000))")
        let journal = try SQLiteJournal(path: state)
        let runID = try #require(try journal.latestRun()?.id)
        let stretched = try journal.events(run: runID, afterSequence: 0, limit: 10_000).filter { $0.kind == "samplingStretched" }
        #expect(!stretched.isEmpty, "journaled")
        #expect(stretched.first?.detail.contains("more than half the period") == true, "\(stretched.first?.detail ?? "")")
    }
}
