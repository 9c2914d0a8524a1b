import Foundation
import SwitchoverCore
import SwitchoverStore
import SwitchoverTestKit
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A `--state` that cannot be a journal (a directory, a FIFO, a corrupt or truncated file, a
/// read-only folder) is bad input: exit 2, saying what is there, nothing changed, and with
/// `--output json` one JSON object with `error` (issue 11, item 11). The built binary against
/// real files; `run` against a real HAProxy whose weights must not move.
@Suite
struct StatePathTests {
    static func folder(_ name: String) throws -> URL { try TemporaryDirectory.make(name) }

    /// `switchover ARGS --state STATE` with the repository's example configuration.
    static func switchover(_ arguments: [String], state: String) async throws -> (exitCode: Int32, stdout: String, stderr: String) {
        let root = try repositoryRoot()
        return try await runSwitchover(arguments + ["--clusters", root.appendingPathComponent("clusters").path,
                                              "--policies", root.appendingPathComponent("policies").path,
                                              "--state", state], cwd: nil)
    }

    static func repositoryRoot() throws -> URL {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        throw TestKitError("no Package.swift above \(#filePath)")
    }

    /// The JSON object on stdout, or a failure quoting what was printed.
    static func json(_ stdout: String) throws -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any] else {
            throw TestKitError("stdout is not one JSON object: \(stdout)")
        }
        return object
    }

    /// A journal with one run in it, as `run` would have left it.
    static func journal(at path: String) throws {
        let journal = try SQLiteJournal(path: path)
        let run = try journal.startRun(RunRecord(from: "blue", to: "green", policy: "gradual",
                                                 startedAt: .seconds(1_000), pid: 1))
        var state = CutoverState.initial
        state.phase = .shifting
        state.step = 2
        try journal.saveState(run: run, at: .seconds(1_001), state)
        for i in 0..<200 {
            try journal.append(JournalEvent(run: run, at: .seconds(1_001 + Double(i)), kind: "note",
                                            detail: String(repeating: "x", count: 200)))
        }
    }

    @Test("--state naming a directory: status, pause and run exit 2 saying it is a directory; status --output json prints a JSON error")
    func stateIsADirectory() async throws {
        let dir = try Self.folder("state-dir")
        defer { try? FileManager.default.removeItem(at: dir) }
        for command in [["status"], ["pause"], ["run", "blue", "green", "--policy", "gradual"]] {
            let result = try await Self.switchover(command, state: dir.path)
            #expect(result.exitCode == 2, "\(command): \(result.stdout) \(result.stderr)")
            #expect(result.stderr.contains("is a directory, not a journal file"), "\(command): \(result.stderr)")
        }
        let json = try await Self.switchover(["status", "--output", "json"], state: dir.path)
        #expect(json.exitCode == 2)
        let object = try Self.json(json.stdout)
        #expect((object["error"] as? String)?.contains("is a directory") == true, "\(object)")
    }

    @Test("--state naming a FIFO: status exits 2 at once instead of blocking, with a JSON error")
    func stateIsAFIFO() async throws {
        let dir = try Self.folder("state-fifo")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("state.db").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let result = try await Self.switchover(["status", "--output", "json"], state: fifo)
        #expect(result.exitCode == 2, "\(result.stdout) \(result.stderr)")
        #expect((try Self.json(result.stdout)["error"] as? String)?.contains("is a FIFO") == true, "\(result.stdout)")
    }

    @Test("a corrupt or truncated journal: status and pause exit 2 naming the file, status --output json prints a JSON error")
    func corruptAndTruncatedJournals() async throws {
        let dir = try Self.folder("state-corrupt")
        defer { try? FileManager.default.removeItem(at: dir) }
        let garbage = dir.appendingPathComponent("garbage.db").path
        try Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }).write(to: URL(fileURLWithPath: garbage))
        let truncated = dir.appendingPathComponent("truncated.db").path
        try Self.journal(at: truncated)
        let full = try Data(contentsOf: URL(fileURLWithPath: truncated))
        try full.prefix(full.count / 3).write(to: URL(fileURLWithPath: truncated))
        for path in [garbage, truncated] {
            for command in [["status"], ["pause"]] {
                let result = try await Self.switchover(command, state: path)
                #expect(result.exitCode == 2, "\(path) \(command): \(result.stdout) \(result.stderr)")
                #expect(result.stderr.contains(path), "\(result.stderr)")
            }
            let json = try await Self.switchover(["status", "--output", "json"], state: path)
            #expect(json.exitCode == 2, "\(json.stdout) \(json.stderr)")
            #expect(try Self.json(json.stdout)["error"] is String, "\(json.stdout)")
        }
    }

    @Test("a read-only state folder: pause exits 2 (the command cannot be journaled); run exits 2 and HAProxy's weights do not move")
    func readOnlyStateFolder() async throws {
        let lab = try await CutoverLab("state-readonly")
        defer { lab.stopAll() }
        let stateDirectory = (lab.statePath as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        try Self.journal(at: lab.statePath)
        // Root ignores permission bits: a read-only bind mount is what makes the folder read-only.
        let bind = try await Command.run("/bin/mount", ["--bind", stateDirectory, stateDirectory])
        try #require(bind.status == 0, "bind mount needs root (this test fails loudly, never skips): \(bind.output)")
        defer { lazyUnmount(stateDirectory) }
        let readOnly = try await Command.run("/bin/mount", ["-o", "remount,ro,bind", stateDirectory])
        try #require(readOnly.status == 0, "\(readOnly.output)")

        let pause = try await lab.cli(["pause"])
        #expect(pause.exitCode == 2, "\(pause.stdout) \(pause.stderr)")
        let run = try await lab.cli(["run", "blue", "green", "--policy", "test"])
        #expect(run.exitCode == 2, "\(run.stdout) \(run.stderr)")
        #expect(run.stderr.contains("nothing was changed"), "\(run.stderr)")
        #expect(try await lab.liveWeights() == (1, 0), "HAProxy untouched")
    }
}
