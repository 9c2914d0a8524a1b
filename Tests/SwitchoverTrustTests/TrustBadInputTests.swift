import Foundation
import SwitchoverCore
import SwitchoverTestKit
import SwitchoverTrust
import Testing

/// Every bad input is a TrustError naming the file, thrown before any check runs.
@Suite("Trust bad input")
struct TrustBadInputTests {
    /// Runs verification with blue's rootCerts at `path` and returns the error.
    private func error(rootCerts path: String, _ f: TrustFixture) async throws -> TrustError {
        let root = try TrustPKI.root("Istio Root CA")
        let green = try f.cluster("green", roots: [root])
        let blue = TrustFixture.cluster("blue", trust: TrustSpec(trustDomain: "cluster.local", rootCerts: path, certChain: nil, probe: nil))
        do {
            let report = try await verify(blue, green)
            Issue.record("expected an input error, got a report: \(report.verdict)")
            throw TestKitError("no error")
        } catch let error as TrustError {
            #expect(error.file == path)
            #expect(error.description.hasPrefix(path))
            return error
        }
    }

    @Test("a missing file")
    func missing() async throws {
        let f = try TrustFixture()
        let error = try await error(rootCerts: f.path("nope.pem"), f)
        #expect(error.code == .missingFile)
    }

    @Test("an empty file")
    func empty() async throws {
        let f = try TrustFixture()
        let error = try await error(rootCerts: f.write("empty.pem", text: "\n  \n"), f)
        #expect(error.code == .emptyFile)
    }

    @Test("garbage")
    func garbage() async throws {
        let f = try TrustFixture()
        let error = try await error(rootCerts: f.write("garbage.pem", text: "this is not a certificate\n"), f)
        #expect(error.code == .garbage)
    }

    @Test("a DER certificate where PEM is expected")
    func der() async throws {
        let f = try TrustFixture()
        let error = try await error(rootCerts: f.write("root.der", data: TrustPKI.root("Istio Root CA").der), f)
        #expect(error.code == .derNotPEM)
        #expect(error.detail.contains("openssl x509 -inform der"))
    }

    @Test("a private key where a certificate is expected, without echoing the key")
    func privateKey() async throws {
        let f = try TrustFixture()
        let root = try TrustPKI.root("Istio Root CA")
        let keyPEM = root.key.pem
        let error = try await error(rootCerts: f.write("root-key.pem", text: root.pem + keyPEM), f)
        #expect(error.code == .privateKey)
        let body = keyPEM.split(separator: "\n").filter { !$0.hasPrefix("-----") }
        #expect(!body.isEmpty)
        for line in body { #expect(!error.description.contains(line)) }
        #expect(error.detail.contains("PRIVATE KEY"))
    }

    @Test("a truncated PEM block")
    func truncated() async throws {
        let f = try TrustFixture()
        let pem = try TrustPKI.root("Root A").pem + TrustPKI.root("Root B").pem
        let cut = String(pem.prefix(pem.count - 200))
        let error = try await error(rootCerts: f.write("truncated.pem", text: cut), f)
        #expect(error.code == .truncatedPEM)
        #expect(error.detail.contains("no matching END line"))
    }

    @Test("a complete PEM block with corrupt content")
    func corruptBlock() async throws {
        let f = try TrustFixture()
        let pem = try TrustPKI.root("Root A").pem
        var lines = pem.split(separator: "\n").map(String.init)
        lines[3] = String(repeating: "A", count: lines[3].count)
        let error = try await error(rootCerts: f.write("corrupt.pem", text: lines.joined(separator: "\n") + "\n"), f)
        #expect(error.code == .malformedPEM)
        #expect(error.openSSLErrors?.errors.isEmpty == false)
    }

    @Test("a bad certChain is named too, and nothing runs")
    func badChain() async throws {
        let f = try TrustFixture()
        let root = try TrustPKI.root("Istio Root CA")
        let chainPath = try f.write("chain.pem", text: "")
        let blue = TrustFixture.cluster("blue", trust: TrustSpec(trustDomain: "cluster.local", rootCerts: try f.write("r.pem", [root]),
                                                                  certChain: chainPath, probe: nil))
        let green = try f.cluster("green", roots: [root])
        let error = await #expect(throws: TrustError.self) { try await verify(blue, green) }
        #expect(error?.file == chainPath)
        #expect(error?.code == .emptyFile)
    }

    @Test("a malformed probe address is an input error")
    func badProbe() async throws {
        let f = try TrustFixture()
        let root = try TrustPKI.root("Istio Root CA")
        let blue = try f.cluster("blue", roots: [root], probe: "localhost")
        let green = try f.cluster("green", roots: [root])
        let error = await #expect(throws: TrustError.self) { try await verify(blue, green) }
        #expect(error?.code == .badProbeAddress)
    }
}
