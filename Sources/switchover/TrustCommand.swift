import ArgumentParser
import Foundation
import SwitchoverCore
import SwitchoverTrust

/// `switchover trust FROM TO [--probe] [--horizon 30d]`: proves that two clusters share mTLS
/// trust (DESIGN.md section 4). Exit 0 trusted (warnings allowed), 1 not trusted, 2 input error.
struct Trust: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify that two clusters share mTLS trust.",
        discussion: """
            Compares the roots by SHA-256, verifies each cluster's certChain against the other's roots \
            with OpenSSL, checks trust domains and validity (expired: fail; inside --horizon: warn), and with \
            --probe handshakes with each cluster's spec.trust.probe endpoint. Exit codes: 0 trusted, \
            1 not trusted, 2 input error.
            """
    )

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The cluster traffic moves from.") var from: String
    @Argument(help: "The cluster traffic moves to.") var to: String
    @Flag(help: "Also handshake with each cluster's probe endpoint.") var probe = false
    @Option(help: "Roots and intermediates expiring within this are a warning (30d, 72h).")
    var horizon: String = "30d"
    @Option(name: .customLong("probe-timeout"), help: "Connect plus handshake, per probe.")
    var probeTimeout: String = "5s"
    @Option(name: .customLong("client-cert"), help: "PEM client certificate chain for probe endpoints that require mTLS.")
    var clientCertificate: String?
    @Option(name: .customLong("client-key"), help: "The client certificate's private key (PEM).")
    var clientKey: String?

    func validate() throws {
        guard let horizon = parseDuration(horizon), horizon >= .zero else {
            throw ValidationError("--horizon: '\(horizon)' is not a duration such as 30d or 72h")
        }
        guard let timeout = parseDuration(probeTimeout), timeout > .zero else {
            throw ValidationError("--probe-timeout: '\(probeTimeout)' is not a positive duration such as 5s")
        }
        if (clientCertificate == nil) != (clientKey == nil) {
            throw ValidationError("--client-cert and --client-key go together")
        }
    }

    func run() async throws {
        let (fromCluster, toCluster) = try loadPair()
        let report: TrustReport
        do {
            report = try await verifyTrust(
                from: fromCluster, to: toCluster, horizon: parseDuration(horizon) ?? .seconds(30 * 86_400), probe: probe,
                now: Date(),
                probeOptions: ProbeOptions(timeout: parseDuration(probeTimeout) ?? .seconds(5),
                                           clientCertificate: clientCertificate, clientKey: clientKey))
        } catch let error as TrustError {
            writeStandardError("switchover trust: \(error)\n")
            throw Exit.inputError
        }
        switch global.output {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            FileHandle.standardOutput.write(try encoder.encode(report))
            FileHandle.standardOutput.write(Data("\n".utf8))
        case .text:
            FileHandle.standardOutput.write(Data(Self.table(report).utf8))
        }
        if !report.trusted { throw Exit.no }
    }

    /// FROM and TO from the configuration folders, or exit 2 with every problem as
    /// `FILE:LINE:COL: message`. The one place this command touches configuration loading.
    private func loadPair() throws -> (Cluster, Cluster) {
        let (configuration, allDiagnostics) = ConfigLoader.load(clustersDirectory: global.clusters,
                                                                policiesDirectory: global.policies)
        // Trust needs clusters only: a missing or broken policy folder is `validate`'s business.
        let policies = URL(fileURLWithPath: global.policies).standardizedFileURL.path
        let diagnostics = allDiagnostics.filter {
            let file = URL(fileURLWithPath: $0.location.file).standardizedFileURL.path
            return file != policies && !file.hasPrefix(policies + "/")
        }
        var problems = diagnostics.map(\.description)
        let known = configuration.clusters.map(\.name).sorted().joined(separator: ", ")
        for name in [from, to] where configuration.cluster(named: name) == nil && diagnostics.isEmpty {
            problems.append("\(global.clusters): no cluster named '\(name)' (known: \(known.isEmpty ? "none" : known))")
        }
        if from == to { problems.append("FROM and TO are both '\(from)': trust is between two clusters") }
        guard problems.isEmpty, let a = configuration.cluster(named: from), let b = configuration.cluster(named: to) else {
            writeStandardError(problems.map { "\($0)\n" }.joined())
            throw Exit.inputError
        }
        return (a, b)
    }

    /// `check | status | detail`, then the verdict.
    static func table(_ report: TrustReport) -> String {
        let nameWidth = max(5, report.checks.map(\.name.count).max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
        var lines = ["\(pad("check", nameWidth))  status  detail"]
        lines.append(String(repeating: "-", count: nameWidth) + "  ------  ------")
        for check in report.checks {
            lines.append("\(pad(check.name, nameWidth))  \(pad(check.status.rawValue, 6))  \(check.detail)")
        }
        lines.append("")
        lines.append(report.verdict)
        return lines.joined(separator: "\n") + "\n"
    }
}

private func writeStandardError(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}
