import Foundation
import SwitchoverTestKit
#if canImport(Glibc)
import Glibc
#endif

/// The short commands scripts call in loops: `switchover validate` on the repository's example
/// configuration and `switchover status` on the journal of a finished run (a promoted switchover
/// of the lab). Each is started `runs` times, alternately, with `posix_spawn`; per run the wall
/// time from spawn to exit and the peak resident memory the kernel reports for the child
/// (`wait4`'s `ru_maxrss`). Beside them, `/bin/true` measured the same way: what starting any
/// process costs on this machine.
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
                note: "posix_spawn to wait4, output to /dev/null, \(runs) runs alternating with the others"))
            rows.append(Stats(peak[name]!).row(
                "\(what): peak RSS", unit: "MiB", reference: 32, referenceLabel: "Flagger's chart request: 32 MiB",
                note: "wait4's ru_maxrss of the child, same runs"))
        }
        return rows
    }

    /// Runs `arguments` to its end; wall time (ms), peak RSS (KiB) and exit status.
    static func spawn(_ arguments: [String]) throws -> (milliseconds: Double, kibibytes: Double, status: Int32) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let start = ContinuousClock.now
        let spawned = posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
        guard spawned == 0 else { throw TestKitError("posix_spawn \(arguments[0]): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 {
            guard errno == EINTR else { throw TestKitError("wait4 \(arguments[0]): \(String(cString: strerror(errno)))") }
        }
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (seconds(since: start) * 1000, Double(usage.ru_maxrss), exit)
    }
}
