import Foundation
import SwitchoverCore
import SwitchoverRuntime
import SwitchoverStore
import SwitchoverTestKit
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Control commands sent to a coordinator that holds the lock but never answers (this test
/// process holds it and reads no commands): after the 5 s wait the CLI withdraws the command in
/// the journal, so what it reported as refused can never be carried out later.
@Suite
struct ControlWithdrawTests {
    /// A journal with one shifting run, and the coordinator lock held by this process.
    struct SilentCoordinator {
        let folder: URL
        let statePath: String
        let journal: SQLiteJournal
        let lock: CoordinatorLock

        init(_ name: String) throws {
            folder = try TemporaryDirectory.make(name)
            statePath = folder.appendingPathComponent("state.db").path
            journal = try SQLiteJournal(path: statePath)
            let run = try journal.startRun(RunRecord(from: "blue", to: "green", policy: "gradual",
                                                     startedAt: Coordinator.wallClock(), pid: getpid()))
            var state = CutoverState.initial
            state.phase = .shifting
            state.step = 1
            try journal.saveState(run: run, at: Coordinator.wallClock(), state)
            lock = try CoordinatorLock(statePath: statePath)
        }

        func cli(_ arguments: [String]) async throws -> (exitCode: Int32, stdout: String, stderr: String) {
            try await runSwitchover(arguments + ["--state", statePath], cwd: folder)
        }

        func finish() {
            lock.release()
            try? FileManager.default.removeItem(at: folder)
        }
    }

    @Test("`pause` with no answer in 5 s: exit 1 'withdrawn', the row refused and no longer pending, a late answer ignored")
    func pauseIsWithdrawn() async throws {
        let coordinator = try SilentCoordinator("withdraw-pause")
        defer { coordinator.finish() }
        let started = ContinuousClock.now
        let result = try await coordinator.cli(["pause", "--reason", "dashboards"])
        let waited = ContinuousClock.now - started
        #expect(result.exitCode == 1, "\(result.stdout) \(result.stderr)")
        #expect(result.stdout == "pause: refused: no answer from the coordinator within 5 s; withdrawn\n", "\(result.stdout)")
        #expect(waited >= .seconds(5), "it waited the whole 5 s first: \(waited)")

        let journal = coordinator.journal
        #expect(try journal.pendingCommands().isEmpty, "a coordinator reading commands now finds nothing to carry out")
        let record = try #require(try journal.command(1))
        #expect(record.command == "pause")
        #expect(record.accepted == false)
        #expect(record.acknowledgedAt != nil)
        #expect(record.outcome == "no answer from the coordinator within 5 s; withdrawn")
        // The coordinator wakes up and answers: its conditional acknowledgement changes nothing.
        try journal.acknowledgeCommand(1, at: Coordinator.wallClock(), accepted: true, outcome: "paused")
        #expect(try journal.command(1)?.accepted == false)
    }

    @Test("`decommission` with no answer in 5 s, as JSON: accepted false, 'withdrawn', the command id, exit 1")
    func decommissionIsWithdrawn() async throws {
        let coordinator = try SilentCoordinator("withdraw-decommission")
        defer { coordinator.finish() }
        let result = try await coordinator.cli(["decommission", "blue", "--output", "json"])
        #expect(result.exitCode == 1, "\(result.stdout) \(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
                                  "\(result.stdout)")
        #expect(object["accepted"] as? Bool == false)
        #expect(object["detail"] as? String == "no answer from the coordinator within 5 s; withdrawn")
        let id = try #require(object["id"] as? Int)
        let record = try #require(try coordinator.journal.command(Int64(id)))
        #expect(record.command == "decommission")
        #expect(record.accepted == false && record.acknowledgedAt != nil)
        #expect(try coordinator.journal.pendingCommands().isEmpty)
    }

    @Test("a coordinator that answers within the 5 s is reported as it answered, not withdrawn")
    func answerInTimeStands() async throws {
        let coordinator = try SilentCoordinator("withdraw-answered")
        defer { coordinator.finish() }
        let journal = coordinator.journal
        // This process plays the coordinator: it refuses the command after about a second.
        let answerer = Task.detached {
            for _ in 0..<100 {
                if let command = try journal.pendingCommands().first {
                    try await Task.sleep(for: .seconds(1))
                    try journal.acknowledgeCommand(command.id, at: Coordinator.wallClock(), accepted: false,
                                                   outcome: "abort is not possible in phase promoted")
                    return
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let result = try await coordinator.cli(["abort"])
        try await answerer.value
        #expect(result.exitCode == 1)
        #expect(result.stdout == "abort: refused: abort is not possible in phase promoted\n", "\(result.stdout)")
        #expect(try journal.command(1)?.outcome == "abort is not possible in phase promoted")
    }
}

/// The preflight's health failures name the URL without its user:password: credentials in a
/// cluster's `health` URL never reach stderr or the JSON on stdout.
@Suite
struct PreflightRedactionTests {
    @Test("health URL credentials are redacted in text and JSON preflight failures (HTTP 503 and no answer)")
    func credentialsNeverPrinted() async throws {
        let lab = try await CutoverLab("redact")
        defer { lab.stopAll() }
        let file = lab.folder.appendingPathComponent("clusters/green.yaml")
        let yaml = try String(contentsOf: file, encoding: .utf8)
        let plain = "http://\(lab.green.address)/healthz"
        #expect(yaml.contains("health: \(plain)"))
        try yaml.replacingOccurrences(of: "health: \(plain)", with: "health: http://ops:s3cr3t-pw@\(lab.green.address)/healthz")
            .write(to: file, atomically: true, encoding: .utf8)

        try lab.green.fail(true)
        let answered = try await lab.cli(["run", "blue", "green", "--policy", "test"])
        #expect(answered.exitCode == 2, "\(answered.stderr)")
        #expect(answered.stderr.contains("cluster green: health \(plain) answered HTTP 503"), "\(answered.stderr)")
        #expect(!answered.stderr.contains("s3cr3t") && !answered.stdout.contains("s3cr3t"), "\(answered.stderr)")

        await lab.green.stop()
        let silent = try await lab.cli(["run", "blue", "green", "--policy", "test", "--output", "json"])
        #expect(silent.exitCode == 2, "\(silent.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(silent.stdout.utf8)) as? [String: Any],
                                  "\(silent.stdout)")
        let failures = try #require(object["failures"] as? [String])
        #expect(failures.contains { $0.hasPrefix("cluster green: health \(plain) did not answer") }, "\(failures)")
        #expect(!silent.stdout.contains("s3cr3t") && !silent.stderr.contains("s3cr3t"), "\(silent.stdout) \(silent.stderr)")
        #expect(!silent.stdout.contains("ops:") && !silent.stderr.contains("ops:"))
        #expect(try lab.state() == nil, "a failed preflight journals no run")
    }
}

/// A coordinator that fails after the run began (here: another process holds the journal's
/// write lock longer than SQLite's 5 s busy timeout) exits 1, the contract's "did not
/// complete", saying weights may have moved and where to look; never a code outside the contract.
@Suite
struct CoordinatorFailureExitTests {
    @Test("the journal locked away mid-run: `run` exits 1 saying the run did not complete and pointing at `status`")
    func journalLockedAwayExitsOne() async throws {
        let lab = try await CutoverLab("coordfail", policy: .init(bake: "30s"))
        defer { lab.stopAll() }
        let sqlite3 = try Tools.require("sqlite3")
        let coordinator = try lab.startCoordinator()
        defer { coordinator.stopInBackground() }
        try await lab.waitFor("step 1 baking", process: coordinator) { $0.step == 1 && $0.stepStartedAt != nil }

        // sqlite3 takes the write lock and keeps it for 8 s (longer than the coordinator's busy
        // timeout). `.timeout`: it waits its turn for the lock (the coordinator writes several times
        // a turn, and in a parallel run each write takes longer), instead of failing at once when it
        // arrives during one of those writes and holding nothing.
        let holder = try ManagedProcess(
            name: "sqlite3 holding the write lock", executable: "/bin/sh",
            arguments: ["-c", "(echo '.timeout 10000'; echo 'BEGIN IMMEDIATE;'; sleep 8; echo 'ROLLBACK;') | \"$0\" \"$1\"",
                        sqlite3, lab.statePath],
            logFile: lab.folder.appendingPathComponent("sqlite3-holder.log"))
        defer { holder.stopInBackground() }

        let exit = try await lab.waitForExit(coordinator, timeout: 30)
        let log = coordinator.logTail(lines: 40)
        #expect(exit == 1, "\(log)\nsqlite3: \(holder.logTail())")
        #expect(log.contains("coordinator failed"), "\(log)")
        #expect(log.contains("the run did not complete and weights may have moved"), "\(log)")
        #expect(log.contains("`switchover status`"), "\(log)")
    }
}
