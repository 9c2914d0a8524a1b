import ArgumentParser
import Foundation
import SwitchoverCore
import SwitchoverReport
import SwitchoverRuntime
import SwitchoverStore

/// `switchover report`: one self-contained HTML file of a run, from the journal alone (opened
/// read-only, so it is safe while a coordinator is running). The policy file, when it still
/// loads, adds the step count and the drain's hold and DNS TTL; without it the report renders
/// without those marks rather than failing.
struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write an HTML report of the run.")
    @OptionGroup var global: GlobalOptions

    @Option(help: "Where to write the HTML file.")
    var out: String = "./switchover-report.html"

    @Option(help: "The run to report on (default: the newest).")
    var run: Int64?

    func run() async throws {
        try await global.guardingJournal("report") { try await execute() }
    }

    func execute() async throws {
        guard EtcdLocation.isEtcd(global.state) || FileManager.default.fileExists(atPath: global.state) else {
            printError("switchover report: no journal at \(global.state) (start a run first, or pass --state)\n")
            throw Exit.inputError
        }
        let data: ReportData
        do {
            let journal = try global.stateLocation().readOnlyJournal()
            let record = try run.map { try journal.run(id: $0) } ?? journal.latestRun()
            let (configuration, _) = global.loadConfiguration()
            let policy = record.flatMap { configuration.policy(named: $0.policy) }.map(ReportPolicy.init)
            data = try ReportData.load(from: journal, run: run, policy: policy)
        } catch {
            printError("switchover report: \(global.state): \(error)\n")
            throw Exit.inputError
        }
        let html = renderReport(data)
        do {
            try Data(html.utf8).write(to: URL(fileURLWithPath: out), options: .atomic)
        } catch {
            printError("switchover report: cannot write \(out): \(error.localizedDescription)\n")
            throw Exit.inputError
        }
        let path = URL(fileURLWithPath: out).standardizedFileURL.path
        switch global.output {
        case .text: print(path)
        case .json: printJSON(["path": path, "run": Int(data.run.id), "bytes": html.utf8.count])
        }
    }
}
