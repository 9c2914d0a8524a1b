import Foundation
import COpenSSL
import SwitchoverCore
import SwitchoverTestKit
import SwitchoverTrust
#if canImport(Glibc)
import Glibc
#endif

// CPU time per full trust verification of two clusters (bundles read from disk and parsed,
// roots compared, both chains verified, validity checked; no probe), as `switchover trust`
// and `switchover run`'s preflight do it. Run: `swift run -c release SwitchoverBench [iterations]`
// (bench/trust.sh). Prints a markdown table.

func cpuNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

struct Scenario {
    var name: String
    var from: Cluster
    var to: Cluster
}

func cluster(_ name: String, roots: String, chain: String?) -> Cluster {
    Cluster(name: name, istio: IstioSpec(version: "1.27.4", revision: nil),
            trust: TrustSpec(trustDomain: "cluster.local", rootCerts: roots, certChain: chain, probe: nil),
            loadBalancer: ClusterLoadBalancerSpec(servers: [name]), health: nil,
            location: SourceLocation(file: "\(name).yaml", line: 1, column: 1))
}

func makeScenarios(in directory: URL) throws -> [Scenario] {
    func write(_ name: String, _ certificates: [IssuedCertificate]) throws -> String {
        let url = directory.appendingPathComponent(name)
        try IssuedCertificate.writeBundle(certificates, to: url)
        return url.path
    }
    let rsaRoot = try TrustPKI.root("Istio Root CA", key: .rsa2048)
    let ecRoot = try TrustPKI.root("Istio Root CA 2")
    let blueIntermediate = try rsaRoot.intermediate("blue intermediate", key: .rsa2048)
    let greenIntermediate = try rsaRoot.intermediate("green intermediate")
    let shared = Scenario(
        name: "shared RSA root, RSA/EC intermediates (Istio plug-in CA layout: intermediate + root)",
        from: cluster("blue", roots: try write("blue-root.pem", [rsaRoot]), chain: try write("blue-chain.pem", [blueIntermediate, rsaRoot])),
        to: cluster("green", roots: try write("green-root.pem", [rsaRoot]), chain: try write("green-chain.pem", [greenIntermediate, rsaRoot])))
    let rotation = Scenario(
        name: "rotation: green holds old+new roots (warn path)",
        from: cluster("blue", roots: try write("r-blue-root.pem", [rsaRoot]), chain: try write("r-blue-chain.pem", [blueIntermediate])),
        to: cluster("green", roots: try write("r-green-root.pem", [rsaRoot, ecRoot]), chain: try write("r-green-chain.pem", [greenIntermediate])))
    let foreign = try TrustPKI.root("Istio Root CA")
    let mismatch = Scenario(
        name: "same subject, different keys (fail path, both chains re-verified against own roots)",
        from: cluster("blue", roots: try write("m-blue-root.pem", [rsaRoot]), chain: try write("m-blue-chain.pem", [blueIntermediate])),
        to: cluster("green", roots: try write("m-green-root.pem", [foreign]), chain: try write("m-green-chain.pem", [foreign.intermediate("green intermediate")])))
    return [shared, rotation, mismatch]
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
}

/// `SwitchoverBench trust [iterations]` (and, for bench/trust.sh, `SwitchoverBench [iterations]`).
enum TrustBenchmark {
    /// CPU ms per verification (one sample per batch of 10) for one scenario.
    struct Result: Sendable {
        var name: String
        var samples: [Double]
        var verdict: String
    }

    static func run(_ arguments: [String]) async throws {
        let iterations = arguments.first.flatMap(Int.init) ?? 2_000
        print("CPU time per verification (ms), median and spread over batches of 10, \(ProcessInfo.processInfo.activeProcessorCount) cores, OpenSSL \(String(cString: OpenSSL_version(0)))")
        print("")
        print("| scenario | iterations | median CPU ms | p10 | p90 | min | max | verdict |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for result in try await measure(iterations: iterations) {
            let samples = result.samples.sorted()
            func f(_ v: Double) -> String { String(format: "%.3f", v) }
            print("| \(result.name) | \(iterations) | \(f(percentile(samples, 0.5))) | \(f(percentile(samples, 0.1))) | \(f(percentile(samples, 0.9))) | \(f(samples.first!)) | \(f(samples.last!)) | \(result.verdict) |")
        }
    }

    /// Every scenario, `iterations` verifications each (the shared-root scenario first).
    static func measure(iterations: Int) async throws -> [Result] {
        let directory = try TemporaryDirectory.make("trust-bench")
        defer { try? FileManager.default.removeItem(at: directory) }
        let scenarios = try makeScenarios(in: directory)
        let now = Date()
        var results: [Result] = []
        for scenario in scenarios {
            var verdict = ""
            for _ in 0..<50 { // warm-up: page cache, OpenSSL's lazy init
                verdict = try await verifyTrust(from: scenario.from, to: scenario.to, horizon: .seconds(30 * 86_400), probe: false, now: now).trusted ? "trusted" : "not trusted"
            }
            // Samples are batches of `batch` verifications: the process CPU clock is updated in
            // scheduler ticks on some kernels, so single-call samples of a few ms are noisy.
            let batch = 10
            var samples: [Double] = []
            for _ in 0..<max(1, iterations / batch) {
                let start = cpuNanoseconds()
                for _ in 0..<batch {
                    let report = try await verifyTrust(from: scenario.from, to: scenario.to, horizon: .seconds(30 * 86_400), probe: false, now: now)
                    precondition(!report.checks.isEmpty)
                }
                let end = cpuNanoseconds()
                samples.append(Double(end - start) / 1e6 / Double(batch))
            }
            results.append(Result(name: scenario.name, samples: samples, verdict: verdict))
        }
        return results
    }
}
