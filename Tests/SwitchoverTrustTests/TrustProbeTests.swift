import Foundation
import SwitchoverTestKit
import SwitchoverTrust
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The live probe against a real `openssl s_server` on 127.0.0.1.
@Suite("Trust probe")
struct TrustProbeTests {
    /// Starts `openssl s_server` presenting `leaf` (+ `chain`) and waits until it listens.
    private func server(_ f: TrustFixture, leaf: IssuedCertificate, chain: [IssuedCertificate],
                        extra: [String] = []) async throws -> (ManagedProcess, Int) {
        let openssl = try Tools.require("openssl")
        let port = try Loopback.freePort()
        let leafPath = try f.write("leaf-\(port).pem", [leaf])
        let keyPath = try f.write("leaf-\(port).key", text: leaf.key.pem)
        let chainPath = try f.write("chain-\(port).pem", chain)
        let process = try ManagedProcess(name: "openssl s_server", executable: openssl,
                                         arguments: ["s_server", "-cert", leafPath, "-key", keyPath, "-cert_chain", chainPath,
                                                     "-accept", "127.0.0.1:\(port)", "-quiet"] + extra,
                                         logFile: f.directory.appendingPathComponent("s_server-\(port).log"))
        do {
            try await Loopback.waitForPort(port, of: process)
        } catch {
            process.stopInBackground()
            throw error
        }
        return (process, port)
    }

    @Test("a leaf issued under the shared root passes: verified, SPIFFE identity and expiry reported")
    func sharedRoot() async throws {
        let f = try TrustFixture()
        let root = try TrustPKI.root("Istio Root CA", key: .rsa2048)
        let intermediate = try root.intermediate("blue intermediate")
        let leafExpiry = Date(timeIntervalSince1970: Date().addingTimeInterval(86_400).timeIntervalSince1970.rounded(.down))
        let leaf = try intermediate.leaf(spiffe: "spiffe://cluster.local/ns/default/sa/productpage", notAfter: leafExpiry)
        let (server, port) = try await server(f, leaf: leaf, chain: [intermediate])
        defer { server.stopInBackground(grace: 1) }
        let blue = try f.cluster("blue", roots: [root], chain: [intermediate], probe: "127.0.0.1:\(port)")
        let green = try f.cluster("green", roots: [root], chain: [root.intermediate("green intermediate")])
        let report = try await verify(blue, green, probe: true)
        let probe = try #require(report.check("probe.blue"))
        #expect(probe.status == .pass, "\(probe.detail)")
        #expect(probe.detail.contains("leaf expires \(leafExpiry.formatted(.iso8601))"))
        #expect(probe.detail.contains("spiffe://cluster.local/ns/default/sa/productpage"))
        #expect(report.clusters["blue"]?.probe?.identity == "spiffe://cluster.local/ns/default/sa/productpage")
        #expect(report.check("probe.green")?.status == .warn)
        #expect(report.trusted)
    }

    @Test("a leaf issued under a foreign root fails")
    func foreignRoot() async throws {
        let f = try TrustFixture()
        let root = try TrustPKI.root("Istio Root CA")
        let foreign = try TrustPKI.root("Istio Root CA")
        let foreignIntermediate = try foreign.intermediate("blue intermediate")
        let leaf = try foreignIntermediate.leaf(spiffe: "spiffe://cluster.local/ns/default/sa/productpage")
        let (server, port) = try await server(f, leaf: leaf, chain: [foreignIntermediate])
        defer { server.stopInBackground(grace: 1) }
        let blue = try f.cluster("blue", roots: [root], chain: [root.intermediate("blue intermediate")], probe: "127.0.0.1:\(port)")
        let green = try f.cluster("green", roots: [root])
        let report = try await verify(blue, green, probe: true)
        #expect(!report.trusted)
        let probe = try #require(report.check("probe.blue"))
        #expect(probe.status == .fail)
        #expect(probe.detail.contains("does not verify against green's roots"), "\(probe.detail)")
        #expect(report.checks.filter { $0.status == .fail }.map(\.name) == ["probe.blue"])
    }

    @Test("a leaf with another trust domain in its SPIFFE ID fails")
    func wrongTrustDomain() async throws {
        let f = try TrustFixture()
        let root = try TrustPKI.root("Istio Root CA")
        let intermediate = try root.intermediate("blue intermediate")
        let leaf = try intermediate.leaf(spiffe: "spiffe://other.example/ns/default/sa/productpage")
        let (server, port) = try await server(f, leaf: leaf, chain: [intermediate])
        defer { server.stopInBackground(grace: 1) }
        let blue = try f.cluster("blue", roots: [root], chain: [intermediate], probe: "127.0.0.1:\(port)")
        let report = try await verify(blue, f.cluster("green", roots: [root]), probe: true)
        #expect(!report.trusted)
        #expect(report.check("probe.blue")?.status == .fail)
        #expect(report.check("probe.blue")?.detail.contains("trust domain other.example") == true)
    }

    @Test("an endpoint that requires a client certificate (mTLS, TLS 1.2): fails without one, passes with one")
    func clientCertificate() async throws {
        let f = try TrustFixture()
        let root = try TrustPKI.root("Istio Root CA")
        let intermediate = try root.intermediate("blue intermediate")
        let leaf = try intermediate.leaf(spiffe: "spiffe://cluster.local/ns/istio-system/sa/ingress")
        let caFile = try f.write("client-ca.pem", [root])
        // TLS 1.2: the server refuses a missing client certificate inside the handshake (with
        // TLS 1.3 the client would finish first and learn of it only on its next read).
        let (server, port) = try await server(f, leaf: leaf, chain: [intermediate], extra: ["-Verify", "2", "-CAfile", caFile, "-tls1_2"])
        defer { server.stopInBackground(grace: 1) }
        let blue = try f.cluster("blue", roots: [root], chain: [intermediate], probe: "127.0.0.1:\(port)")
        let green = try f.cluster("green", roots: [root])

        let without = try await verify(blue, green, probe: true)
        #expect(without.check("probe.blue")?.status == .fail)
        #expect(without.check("probe.blue")?.detail.contains("TLS handshake failed") == true, "\(without.check("probe.blue")?.detail ?? "")")

        let clientIssuer = try root.intermediate("green intermediate")
        let client = try clientIssuer.leaf(spiffe: "spiffe://cluster.local/ns/default/sa/switchover")
        let options = ProbeOptions(clientCertificate: try f.write("client.pem", [client, clientIssuer]),
                                   clientKey: try f.write("client.key", text: client.key.pem))
        let with = try await verify(blue, green, probe: true, options: options)
        #expect(with.check("probe.blue")?.status == .pass, "\(with.check("probe.blue")?.detail ?? "")")
    }

    @Test("a refused connection fails with a clear detail")
    func refused() async throws {
        let f = try TrustFixture()
        let root = try TrustPKI.root("Istio Root CA")
        let port = try Loopback.freePort()
        let blue = try f.cluster("blue", roots: [root], probe: "127.0.0.1:\(port)")
        let report = try await verify(blue, f.cluster("green", roots: [root]), probe: true)
        #expect(!report.trusted)
        #expect(report.check("probe.blue")?.status == .fail)
        #expect(report.check("probe.blue")?.detail.contains("connection refused") == true)
    }

    @Test("a port that accepts TCP and never answers TLS times out, without hanging")
    func timeout() async throws {
        let f = try TrustFixture()
        let root = try TrustPKI.root("Istio Root CA")
        let listener = try SilentListener()
        let blue = try f.cluster("blue", roots: [root], probe: "127.0.0.1:\(listener.port)")
        let green = try f.cluster("green", roots: [root])
        // Timed on the test kit's stopwatch thread, not the cooperative pool other suites share.
        let (report, took) = try await Stopwatch.measure {
            try await verify(blue, green, probe: true, options: ProbeOptions(timeout: .seconds(1)))
        }
        #expect(took < .seconds(3), "took \(took)")
        #expect(!report.trusted)
        #expect(report.check("probe.blue")?.status == .fail)
        #expect(report.check("probe.blue")?.detail.contains("timed out") == true, "\(report.check("probe.blue")?.detail ?? "")")
    }
}
