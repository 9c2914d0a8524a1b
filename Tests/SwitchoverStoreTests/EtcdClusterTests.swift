import Foundation
import SwitchoverTestKit
import Testing

/// The test kit's etcd cluster is itself tested: the journal and lock tests on etcd read a lost
/// write or a refused lock as the code's doing, so the cluster must be shown to behave as a real
/// one does first: writes go on with one member down, stop without quorum, and come back when
/// the members do.
@Suite("etcd test kit")
struct EtcdClusterTests {
    @Test("a 3-member cluster keeps writing with one member down, refuses with two down, and recovers")
    func quorum() async throws {
        let cluster = try await EtcdCluster.start()
        defer { cluster.stopInBackground() }
        #expect(cluster.clientURLs.count == 3)
        #expect(cluster.clientURLs.allSatisfy { $0.hasPrefix("http://127.0.0.1:") })
        #expect(cluster.endpoints == cluster.clientURLs.map { $0.replacingOccurrences(of: "http://", with: "") }
            .joined(separator: ","))
        #expect((0..<3).allSatisfy { cluster.isRunning($0) && cluster.pid(of: $0) != nil })

        _ = try await cluster.etcdctl(["put", "/kit/a", "1"])
        #expect(try await cluster.etcdctl(["get", "/kit/a", "--print-value-only"]) == "1\n")

        // One member crashes: two of three are a quorum. If it was the leader, the others
        // elect a new one within about an election timeout first.
        cluster.kill(0)
        #expect(!cluster.isRunning(0) && cluster.pid(of: 0) == nil)
        try await cluster.waitForQuorum(timeout: .seconds(5))
        _ = try await cluster.etcdctl(["put", "/kit/a", "2"])
        #expect(try await cluster.etcdctl(["get", "/kit/a", "--print-value-only"]) == "2\n")

        // A second one crashes: one of three is no quorum, and a write waits out its timeout.
        cluster.kill(1)
        let clock = ContinuousClock()
        let started = clock.now
        await #expect(throws: (any Error).self) {
            _ = try await cluster.etcdctl(["put", "/kit/a", "3"], commandTimeout: .seconds(1))
        }
        #expect(clock.now - started < .seconds(5))
        // A serializable read is still answered, from the survivor's own (possibly stale) copy.
        #expect(try await cluster.etcdctl(["get", "/kit/a", "--print-value-only", "--consistency=s"], through: [2])
                == "2\n")

        // Both come back with their data: the cluster has its quorum again.
        try await cluster.startAgain(1)
        try await cluster.startAgain(0)
        try await cluster.waitForQuorum(timeout: .seconds(10))
        _ = try await cluster.etcdctl(["put", "/kit/a", "4"])
        #expect(try await cluster.etcdctl(["get", "/kit/a", "--print-value-only"]) == "4\n")
        for member in 0..<3 {
            #expect(try await cluster.etcdctl(["get", "/kit/a", "--print-value-only", "--consistency=l"],
                                              through: [member]) == "4\n")
        }
        await cluster.stop()
        #expect((0..<3).allSatisfy { !cluster.isRunning($0) })
    }

    @Test("a cluster with TLS serves a client with a certificate from its CA and refuses one without")
    func clientCertificates() async throws {
        let cluster = try await EtcdCluster.start(tls: true)
        defer { cluster.stopInBackground() }
        #expect(cluster.clientURLs.allSatisfy { $0.hasPrefix("https://127.0.0.1:") })
        let files = try #require(cluster.tlsFiles)

        _ = try await cluster.etcdctl(["put", "/kit/tls", "yes"])
        #expect(try await cluster.etcdctl(["get", "/kit/tls", "--print-value-only"]) == "yes\n")

        // The same cluster through etcdctl run by hand: the CA alone (no client certificate)
        // gets the handshake refused; with the kit's client certificate it reads the value.
        let etcdctl = try Tools.require("etcdctl")
        let base = ["--endpoints", cluster.clientURLs.joined(separator: ","), "--dial-timeout", "2s",
                    "--command-timeout", "2s", "--cacert", files.caFile.path]
        let refused = try await Command.run(etcdctl, base + ["get", "/kit/tls", "--print-value-only"])
        #expect(refused.status != 0, "without a client certificate: \(refused.output)")
        #expect(!refused.output.contains("yes"))
        #expect(cluster.logTails(lines: 100).contains("client didn't provide a certificate"),
                "the members' logs name the missing client certificate as the reason")
        let served = try await Command.run(etcdctl, base + ["--cert", files.clientCertificate.path,
                                                            "--key", files.clientKey.path,
                                                            "get", "/kit/tls", "--print-value-only"])
        #expect(served.status == 0, "with the client certificate: \(served.output)")
        #expect(served.output.contains("yes"))
        await cluster.stop()
    }
}
