import Foundation
import SwitchoverTestKit
import Testing

/// `switchover trust` as scripts see it: the built binary, its stdout, stderr and exit code.
@Suite("switchover trust (CLI)")
struct TrustCLITests {
    /// A folder with clusters/blue.yaml and clusters/green.yaml over run-time PKI.
    final class Setup {
        let directory: URL
        init(greenRoot sharedRoot: Bool = true, greenRoots: String? = nil) throws {
            directory = try TemporaryDirectory.make("trust-cli")
            let fm = FileManager.default
            for folder in ["clusters", "policies", "pki"] {
                try fm.createDirectory(at: directory.appendingPathComponent(folder), withIntermediateDirectories: true)
            }
            let root = try TrustPKI.root("Istio Root CA")
            let greenRoot = sharedRoot ? root : try TrustPKI.root("Istio Root CA")
            try IssuedCertificate.writeBundle([root], to: directory.appendingPathComponent("pki/blue-root.pem"))
            try root.key.pem.write(to: directory.appendingPathComponent("pki/root-key.pem"), atomically: true, encoding: .utf8)
            try IssuedCertificate.writeBundle([root.intermediate("blue intermediate")], to: directory.appendingPathComponent("pki/blue-chain.pem"))
            try IssuedCertificate.writeBundle([greenRoot], to: directory.appendingPathComponent("pki/green-root.pem"))
            try IssuedCertificate.writeBundle([greenRoot.intermediate("green intermediate")], to: directory.appendingPathComponent("pki/green-chain.pem"))
            try ConfigDocuments.write(clusters: ["blue", "green"].map { name in
                ClusterDocument(name: name, rootCerts: name == "green" ? (greenRoots ?? "../pki/green-root.pem") : "../pki/blue-root.pem",
                                certChain: "../pki/\(name)-chain.pem", servers: ["\(name)-1"])
            }, policies: [], in: directory)
        }
        deinit { try? FileManager.default.removeItem(at: directory) }

        func run(_ args: [String]) async throws -> (code: Int32, out: String, err: String) {
            try await runTrustCLI(["trust", "blue", "green", "--clusters", directory.appendingPathComponent("clusters").path,
                             "--policies", directory.appendingPathComponent("policies").path] + args)
        }
    }

    @Test("trusted: a table with the checks and a verdict, exit 0")
    func trusted() async throws {
        let setup = try Setup()
        let result = try await setup.run([])
        #expect(result.code == 0, "\(result.err)")
        #expect(result.out.contains("chain.blue-verifies-against-green  pass"))
        #expect(result.out.contains("TRUSTED: blue and green share mTLS trust"))
    }

    @Test("JSON: the contract's fields on stdout as one object")
    func json() async throws {
        let setup = try Setup()
        let result = try await setup.run(["--output", "json"])
        #expect(result.code == 0, "\(result.err)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any])
        #expect(object["trusted"] as? Bool == true)
        #expect((object["checks"] as? [[String: Any]])?.contains { $0["name"] as? String == "roots.shared" && $0["status"] as? String == "pass" } == true)
        let clusters = try #require(object["clusters"] as? [String: [String: Any]])
        let roots = try #require(clusters["green"]?["roots"] as? [[String: Any]])
        #expect(roots.first?["sha256"] is String && roots.first?["subject"] is String && roots.first?["notAfter"] is String)
    }

    @Test("not trusted: exit 1, the failing check named in the verdict")
    func notTrusted() async throws {
        let setup = try Setup(greenRoot: false)
        let result = try await setup.run([])
        #expect(result.code == 1)
        #expect(result.out.contains("NOT TRUSTED"))
        #expect(result.out.contains("roots.shared                       fail"))
    }

    @Test("bad input (a private key as rootCerts): exit 2, the file named on stderr, a JSON error with the contract's fields empty")
    func badInput() async throws {
        let setup = try Setup(greenRoots: "../pki/root-key.pem")
        let result = try await setup.run(["--output", "json"])
        #expect(result.code == 2)
        #expect(result.err.contains("pki/root-key.pem: line 1 begins a private key"), "\(result.err)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any])
        #expect(object["trusted"] as? Bool == false)
        #expect((object["error"] as? [String: String])?["code"] == "privateKey")
        // The contract's fields are there (a script reading `checks` finds an array), empty: no check ran.
        let checks = try #require(object["checks"] as? [Any], "\(result.out)")
        #expect(checks.isEmpty)
        let clusters = try #require(object["clusters"] as? [String: Any], "\(result.out)")
        #expect(clusters.isEmpty)
    }

    @Test("a missing rootCerts file: exit 2, the file named")
    func missingFile() async throws {
        let setup = try Setup(greenRoots: "../pki/missing.pem")
        let result = try await setup.run([])
        #expect(result.code == 2)
        #expect(result.out.isEmpty)
        #expect(result.err.contains("missing.pem"), "\(result.err)")
    }

    @Test("an unknown cluster: exit 2 naming the known ones")
    func unknownCluster() async throws {
        let setup = try Setup()
        let result = try await runTrustCLI(["trust", "blue", "purple", "--clusters", setup.directory.appendingPathComponent("clusters").path,
                                      "--policies", setup.directory.appendingPathComponent("policies").path])
        #expect(result.code == 2)
        #expect(result.err.contains("TO names unknown cluster 'purple'; known clusters: blue, green"), "\(result.err)")
    }
}

/// Runs the built `switchover` (next to the test bundle) and collects its output through files;
/// the wait for its exit happens on a thread of its own (`OwnThread`), off the cooperative pool.
func runTrustCLI(_ args: [String]) async throws -> (code: Int32, out: String, err: String) {
    let result = try await OwnThread.run("switchover trust") { try runTrustCLIToEnd(args) }
    return (result.code, result.out, result.err)
}

private struct TrustCLIResult: Sendable {
    var code: Int32
    var out: String
    var err: String
}

private func runTrustCLIToEnd(_ args: [String]) throws -> TrustCLIResult {
    let candidates = [Bundle.main.executableURL?.deletingLastPathComponent(), Bundle.main.bundleURL.deletingLastPathComponent(),
                      URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                        .deletingLastPathComponent().appendingPathComponent(".build/debug")]
        .compactMap { $0?.appendingPathComponent("switchover") }
    guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
        throw TestKitError("switchover binary not found: run swift build --build-tests")
    }
    let folder = try TemporaryDirectory.make("trust-cli-out")
    defer { try? FileManager.default.removeItem(at: folder) }
    let outURL = folder.appendingPathComponent("out"), errURL = folder.appendingPathComponent("err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let process = Process()
    process.executableURL = binary
    process.arguments = args
    process.standardOutput = try FileHandle(forWritingTo: outURL)
    process.standardError = try FileHandle(forWritingTo: errURL)
    try process.run()
    process.waitUntilExit()
    return TrustCLIResult(code: process.terminationStatus, out: try String(contentsOf: outURL, encoding: .utf8),
                          err: try String(contentsOf: errURL, encoding: .utf8))
}
