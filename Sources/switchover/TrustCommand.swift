import ArgumentParser
import Foundation
import SwitchoverCore
import SwitchoverTrust
import SwitchoverRuntime
import Logging

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
                                           clientCertificate: clientCertificate, clientKey: clientKey),
                fetch: KubernetesTrustFetch.make(logger: Logger(label: "switchover.kubernetes")))
        } catch let error as TrustError {
            // Bad certificate input: the message names the file; nothing else ran.
            printError("switchover trust: \(error)\n")
            if global.output == .json {
                // The contract's fields, empty (no check ran), plus what was wrong.
                printJSON(["trusted": false, "checks": [Any](), "clusters": [String: Any](),
                           "error": ["code": "\(error.code)", "file": error.file ?? "", "detail": error.detail]])
            }
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

    /// FROM and TO from the configuration folders, or a refusal (exit 2) listing every problem
    /// as `FILE:LINE:COL: message`. Trust needs clusters only: problems of the policy files are
    /// `validate`'s business and do not block this command.
    private func loadPair() throws -> (Cluster, Cluster) {
        let (configuration, problems) = global.loadConfiguration()
        let policies = URL(fileURLWithPath: global.policies).standardizedFileURL.path
        var diagnostics = problems.filter {
            let file = URL(fileURLWithPath: $0.location.file).standardizedFileURL.path
            return file != policies && !file.hasPrefix(policies + "/")
        }
        let commandLine = SourceLocation(file: Diagnostic.commandLine, line: 0, column: 0)
        let known = configuration.clusters.map(\.name).sorted()
        let list = known.isEmpty ? "none are defined" : "known clusters: \(known.joined(separator: ", "))"
        for (role, name) in [("FROM", from), ("TO", to)] where configuration.cluster(named: name) == nil {
            diagnostics.append(Diagnostic(location: commandLine, message: "\(role) names unknown cluster '\(name)'; \(list)"))
        }
        if from == to {
            diagnostics.append(Diagnostic(location: commandLine, message: "FROM and TO are both '\(from)'; trust is checked between two different clusters"))
        }
        guard diagnostics.isEmpty, let a = configuration.cluster(named: from), let b = configuration.cluster(named: to) else {
            try global.refuse(diagnostics.sorted())
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
