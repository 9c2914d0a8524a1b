import Foundation
import SwitchoverTestKit
#if canImport(Glibc)
import Glibc
#endif

/// The short commands scripts call in loops: `switchover validate` on the repository's example
/// configuration and `switchover status` on the journal of a finished run (a promoted switchover
/// of the lab). Each is started `runs` times, alternately, by the small `BenchSpawn` helper;
/// per run the wall time from its fork to the command's exit and the peak resident memory the
/// kernel reports for the command (`wait4`'s `ru_maxrss`). Beside them, `/bin/true` measured the
/// same way: what starting any process costs on this machine.
enum CommandsFigure {
    static func measure(runs: Int, switchover: String) throws -> [FigureRow] {
        progress("short commands: validate and status, \(runs) runs each")
        let lab = try BenchLab("commands", switchover: switchover)
        defer { lab.close() }
        try lab.writePolicy("commands", steps: [50, 100], bake: "1s", gate: false, hardSignal: false)
        let run = try lab.startCoordinator(policy: "commands", extra: ["--until", "promoted"], log: "run.log")
        defer { run.stop() }
        guard run.waitForExit(timeout: 60), run.exitStatus == 0 else {
            throw TestKitError("commands: the run did not promote:\n\(run.logTail())")
        }
        let examples = FileManager.default.currentDirectoryPath
        let commands: [(name: String, arguments: [String])] = [
            ("validate", [switchover, "validate", "--clusters", examples + "/clusters", "--policies", examples + "/policies"]),
            ("status", [switchover, "status"] + lab.globalArguments),
            ("true", ["/bin/true"]),
        ]
        var wall: [String: [Double]] = [:], peak: [String: [Double]] = [:]
        for _ in 0..<runs {
            for command in commands {
                let (milliseconds, kibibytes, status) = try spawn(command.arguments)
                guard status == 0 else { throw TestKitError("commands: \(command.arguments.joined(separator: " ")) exited \(status)") }
                wall[command.name, default: []].append(milliseconds)
                peak[command.name, default: []].append(kibibytes / 1024)
            }
        }
        let floor = Stats(wall["true"]!)
        var rows: [FigureRow] = []
        for (name, what) in [("validate", "`switchover validate` on the examples"), ("status", "`switchover status` on a promoted run's journal")] {
            rows.append(Stats(wall[name]!).row(
                "\(what): wall time", unit: "ms", reference: floor.median,
                referenceLabel: String(format: "starting `/bin/true`, same runs: %.2f ms (%.2f–%.2f)", floor.median, floor.min, floor.max),
                note: "fork to wait4 in BenchSpawn, output to /dev/null, \(runs) runs alternating with the others"))
            rows.append(Stats(peak[name]!).row(
                "\(what): peak RSS", unit: "MiB", reference: 32, referenceLabel: "Flagger's chart request: 32 MiB",
                note: "wait4's ru_maxrss of the command, forked from BenchSpawn (about 1 MiB) so that it counts only its own, same runs"))
        }
        return rows
    }

    /// Runs `arguments` to its end through `BenchSpawn` (beside this binary): wall time (ms),
    /// peak RSS (KiB) and exit status, as the helper measured them.
    static func spawn(_ arguments: [String]) throws -> (milliseconds: Double, kibibytes: Double, status: Int32) {
        let helper = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("BenchSpawn").path
        guard FileManager.default.isExecutableFile(atPath: helper) else {
            throw TestKitError("commands: \(helper) is missing (swift build -c release builds it)")
        }
        let result = try Command.run(helper, arguments)
        let fields = result.output.split(whereSeparator: \.isWhitespace)
        guard result.status == 0, fields.count == 3, let micros = Double(fields[0]), let kib = Double(fields[1]),
              let status = Int32(fields[2]) else {
            throw TestKitError("commands: BenchSpawn \(arguments.joined(separator: " ")): \(result.output)")
        }
        return (micros / 1000, kib, status)
    }
}
