import ArgumentParser
import Foundation
import SwitchoverCore

/// `switchover validate`: loads every file in both folders and reports every problem at once.
///
/// Text: a one-line summary on stdout when valid; otherwise one `FILE:LINE:COL: message` line
/// per problem on stderr (diagnostics go to stderr, DESIGN.md section 2), then a count.
/// JSON: `{"valid", "diagnostics": [{"file","line","column","message"}], "clusters", "policies"}`
/// on stdout either way. Exit 0 valid, 2 invalid.
struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Load every file in both folders and report every problem.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let (configuration, diagnostics) = global.loadConfiguration()
        let clusters = configuration.clusters.map(\.name).sorted()
        let policies = configuration.policies.map(\.name).sorted()
        switch global.output {
        case .json:
            printJSON([
                "valid": diagnostics.isEmpty,
                "diagnostics": diagnostics.map(\.jsonObject),
                "clusters": clusters,
                "policies": policies,
            ])
        case .text:
            if diagnostics.isEmpty {
                print("\(count(clusters.count, "cluster")), \(count(policies.count, "policy", "policies")): valid")
            } else {
                printDiagnostics(diagnostics)
            }
        }
        if !diagnostics.isEmpty { throw Exit.inputError }
    }

    private func count(_ n: Int, _ singular: String, _ plural: String? = nil) -> String {
        "\(n) \(n == 1 ? singular : plural ?? singular + "s")"
    }
}
