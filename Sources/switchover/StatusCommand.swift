import ArgumentParser
import Foundation
import SwitchoverRuntime

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The run's phase, step, weights (journaled and live), gates and drain.",
        discussion: "Reads the journal at --state and the live load balancer; changes nothing. Exit 0 (2 when the journal cannot be read).")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await global.guardingJournal("status") {
            let report = try await StatusReport.read(context: try global.context())
            switch global.output {
            case .text: print(report.lines.joined(separator: "\n"))
            case .json: printJSON(report.json)
            }
        }
    }
}
