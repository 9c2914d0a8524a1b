import Foundation
import SwitchoverCore
import SwitchoverStore
import SwitchoverTestKit
import Testing

/// Runs a short-lived tool to completion and returns its exit status and output (the test kit's
/// `Command.run`: the wait happens on a thread of its own, off the cooperative pool).
func runTool(_ path: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
    let result = try await Command.run(path, arguments)
    return (result.status, result.output)
}

enum JournalKind: String, CaseIterable, CustomTestStringConvertible {
    case sqlite, memory, etcd
    var testDescription: String { rawValue }

    /// A journal of this kind, and what to clean up after: the folder of the SQLite file, or the
    /// real etcd (one member, started for this test, stopped by PID) whose prefix holds it.
    func make() async throws -> (any JournalStore, Cleanup) {
        switch self {
        case .memory:
            return (MemoryJournal(), Cleanup())
        case .sqlite:
            let dir = try TemporaryDirectory.make("journal")
            return (try SQLiteJournal(path: dir.appendingPathComponent("state.db").path), Cleanup(folder: dir))
        case .etcd:
            let etcd = try await EtcdCluster.start(members: 1)
            do {
                let client = EtcdClient(endpoints: etcd.clientURLs)
                return (try EtcdJournal(client: client, prefix: "/switchover/test", create: true), Cleanup(etcd: etcd))
            } catch {
                await etcd.stop()
                throw error
            }
        }
    }

    /// What a journal of the kind leaves behind; `stop()` in a `defer`.
    struct Cleanup {
        var folder: URL?
        var etcd: EtcdCluster?
        func stop() {
            folder.map { try? FileManager.default.removeItem(at: $0) }
            etcd?.stopInBackground()
        }
    }
}

let t0 = Instant(millisecondsSinceEpoch: 1_800_000_000_000)

@Suite("Journal: SQLite, memory and etcd behave the same")
struct JournalBehaviourTests {
    @Test("runs, events, gate evaluations and the engine state round-trip", arguments: JournalKind.allCases)
    func roundTrips(kind: JournalKind) async throws {
        let (journal, cleanup) = try await kind.make()
        defer { cleanup.stop() }
        #expect(try journal.latestRun() == nil)
        let run = try journal.startRun(RunRecord(from: "blue", to: "green", policy: "gradual", startedAt: t0, pid: 4242))
        let latest = try #require(try journal.latestRun())
        #expect(latest.id == run)
        #expect(latest.from == "blue" && latest.to == "green" && latest.policy == "gradual" && latest.pid == 4242)
        #expect(latest.startedAt == t0)

        let event = EngineEvent(.rollbackStarted, "gate green-errors failed 2 time(s)", phase: .rolledBack, step: 3,
                                gate: "green-errors", evidence: ["ratio5xx": "0.3"])
        let seq = try journal.append(run: run, at: t0 + .seconds(5), event)
        let events = try journal.events(run: run, afterSequence: 0, limit: 10)
        #expect(events.count == 1)
        #expect(events[0].sequence == seq)
        #expect(events[0].kind == "rollbackStarted")
        #expect(events[0].at == t0 + .seconds(5))
        let decoded = try JSONDecoder().decode(EngineEvent.self, from: Data(events[0].detail.utf8))
        #expect(decoded == event)
        #expect(try journal.events(run: run, afterSequence: seq, limit: 10).isEmpty)

        let outcome = GateOutcome.fail("5xx ratio 0.3 above 0.01", value: 0.3)
        try journal.recordGateEvaluation(GateEvaluationRecord(run: run, at: t0, step: 3, gate: "green-errors", outcome: outcome))
        try journal.recordGateEvaluation(GateEvaluationRecord(run: run, at: t0 + .seconds(1), step: 3, gate: "latency",
                                                              outcome: .inconclusive("no sample")))
        let evaluations = try journal.gateEvaluations(run: run, limit: 10)
        #expect(evaluations.map(\.gate) == ["green-errors", "latency"])
        #expect(evaluations[0].outcome == outcome)
        #expect(evaluations[1].outcome.value == nil)
        #expect(try journal.gateEvaluations(run: run, limit: 1).map(\.gate) == ["latency"])

        var state = CutoverState.initial
        state.phase = .shifting
        state.step = 2
        state.percentToTarget = 25
        state.stepStartedAt = t0
        try journal.saveState(run: run, at: t0, state)
        state.step = 3
        try journal.saveState(run: run, at: t0 + .seconds(1), state)
        #expect(try journal.loadCutoverState(run: run) == state)
        #expect(try journal.loadState(run: run)?.at == t0 + .seconds(1))
    }

    @Test("an intent without a result is found on resume and decodes back to its action", arguments: JournalKind.allCases)
    func unfinishedIntent(kind: JournalKind) async throws {
        let (journal, cleanup) = try await kind.make()
        defer { cleanup.stop() }
        let run = try journal.startRun(RunRecord(from: "blue", to: "green", policy: "p", startedAt: t0, pid: 1))
        let done = try journal.beginIntent(run: run, at: t0, .setWeights(intent: 1, percentToTarget: 10, step: 1, purpose: .step))
        try journal.finishIntent(done, at: t0 + .milliseconds(40), ok: true, detail: "read back 10%")
        let action = Action.setWeights(intent: 2, percentToTarget: 25, step: 2, purpose: .step)
        let open = try journal.beginIntent(run: run, at: t0 + .seconds(30), action)
        // The crash falls here: no result for `open`.
        let unfinished = try journal.unfinishedIntents(run: run)
        #expect(unfinished.map(\.sequence) == [open])
        #expect(unfinished.first?.intentID == open)
        #expect(try journal.action(ofIntent: unfinished[0]) == action)
        // Re-applied once, finished: nothing left.
        try journal.finishIntent(open, at: t0 + .seconds(31), ok: true, detail: "re-applied after restart")
        #expect(try journal.unfinishedIntents(run: run).isEmpty)
        let results = try journal.events(run: run, afterSequence: 0, limit: 10).filter { $0.kind == "result" }
        #expect(results.map(\.intentID) == [done, open])
        #expect(results.map(\.ok) == [true, true])
    }

    @Test("an intent's action and a detail that is not JSON are quoted so that they read back as the same text: quotes, backslashes, controls, non-ASCII",
          arguments: JournalKind.allCases)
    func intentTextQuoted(kind: JournalKind) async throws {
        let (journal, cleanup) = try await kind.make()
        defer { cleanup.stop() }
        let run = try journal.startRun(RunRecord(from: "blue", to: "green", policy: "p", startedAt: t0, pid: 1))
        for text in ["", "plain", "say \"hi\"", "back\\slash", "line\nbreak\ttab\r", "\u{01}\u{1F}", "blåbær 🚦", "/path"] {
            let sequence = try journal.beginIntent(run: run, at: t0, action: text, detail: text, state: nil, fence: nil)
            let row = try #require(try journal.events(run: run, afterSequence: sequence - 1, limit: 1).first)
            let read = try JSONSerialization.jsonObject(with: Data(row.detail.utf8)) as? [String: String]
            #expect(read == ["action": text, "detail": text], "\(row.detail)")
        }
        // A detail that is JSON already is kept as it is, not quoted again.
        let sequence = try journal.beginIntent(run: run, at: t0, action: "x", detail: "{\"b\":1,\"a\":[2]}", state: nil, fence: nil)
        #expect(try journal.events(run: run, afterSequence: sequence - 1, limit: 1).first?.detail == "{\"action\":\"x\",\"detail\":{\"b\":1,\"a\":[2]}}")
    }

    @Test("an intent lands with the state that expects it; a fenced one (its lease taken over) writes nothing", arguments: JournalKind.allCases)
    func fencedIntent(kind: JournalKind) async throws {
        let (journal, cleanup) = try await kind.make()
        defer { cleanup.stop() }
        let run = try journal.startRun(RunRecord(from: "blue", to: "green", policy: "p", startedAt: t0, pid: 1))
        #expect(try journal.leaseToken() == 0, "never held")
        let first = try journal.takeLease(holder: "pid 1", at: t0)
        #expect(first > 0)
        var expecting = CutoverState.initial
        expecting.phase = .shifting
        expecting.step = 1
        _ = try journal.beginIntent(run: run, at: t0, .setDrain(cluster: "blue"), state: expecting, fence: first)
        #expect(try journal.unfinishedIntents(run: run).count == 1)
        #expect(try journal.loadCutoverState(run: run) == expecting, "the state landed with its intent")

        let second = try journal.takeLease(holder: "pid 2", at: t0 + .seconds(1))
        #expect(second > first, "a new token is above every one before")
        var later = expecting
        later.step = 2
        do {
            _ = try journal.beginIntent(run: run, at: t0 + .seconds(2), .setDrain(cluster: "blue"), state: later, fence: first)
            Issue.record("a deposed holder's intent was written")
        } catch let error as StoreError {
            #expect(error.code == .fenced, "\(error)")
        }
        #expect(try journal.unfinishedIntents(run: run).count == 1, "nothing written")
        #expect(try journal.loadCutoverState(run: run) == expecting, "nor its state")
        _ = try journal.beginIntent(run: run, at: t0 + .seconds(3), .setDrain(cluster: "blue"), state: later, fence: second)
        #expect(try journal.unfinishedIntents(run: run).count == 2, "the current holder writes")
    }

    @Test("commands are submitted, listed while pending, and acknowledged once", arguments: JournalKind.allCases)
    func commands(kind: JournalKind) async throws {
        let (journal, cleanup) = try await kind.make()
        defer { cleanup.stop() }
        let pause = try journal.submitCommand("pause", arguments: "{}", at: t0)
        let rollback = try journal.submitCommand("rollback", arguments: #"{"reason":"pager"}"#, at: t0 + .seconds(1))
        #expect(try journal.pendingCommands().map(\.id) == [pause, rollback])
        try journal.acknowledgeCommand(pause, at: t0 + .seconds(2), accepted: false, outcome: "not shifting")
        // A second acknowledgement does not overwrite the first.
        try journal.acknowledgeCommand(pause, at: t0 + .seconds(3), accepted: true, outcome: "late")
        #expect(try journal.pendingCommands().map(\.id) == [rollback])
        let record = try #require(try journal.command(pause))
        #expect(record.accepted == false)
        #expect(record.outcome == "not shifting")
        #expect(record.acknowledgedAt == t0 + .seconds(2))
        #expect(try journal.command(rollback)?.arguments == #"{"reason":"pager"}"#)
        #expect(try journal.command(999) == nil)
    }

    @Test("a pending command is withdrawn once: refused, no longer pending, and a late acknowledgement does not revive it",
          arguments: JournalKind.allCases)
    func withdrawPending(kind: JournalKind) async throws {
        let (journal, cleanup) = try await kind.make()
        defer { cleanup.stop() }
        let pause = try journal.submitCommand("pause", arguments: "{}", at: t0)
        let other = try journal.submitCommand("abort", arguments: "{}", at: t0 + .seconds(1))
        #expect(try journal.withdrawCommand(pause, at: t0 + .seconds(5), outcome: "no answer; withdrawn") == true)
        #expect(try journal.pendingCommands().map(\.id) == [other], "the coordinator no longer sees it")
        // The coordinator answers late: its conditional acknowledgement leaves the withdrawal alone.
        try journal.acknowledgeCommand(pause, at: t0 + .seconds(6), accepted: true, outcome: "paused")
        let record = try #require(try journal.command(pause))
        #expect(record.accepted == false)
        #expect(record.outcome == "no answer; withdrawn")
        #expect(record.acknowledgedAt == t0 + .seconds(5))
        // Withdrawing twice changes nothing the second time.
        #expect(try journal.withdrawCommand(pause, at: t0 + .seconds(7), outcome: "again") == false)
        #expect(try journal.command(pause)?.outcome == "no answer; withdrawn")
        #expect(try journal.withdrawCommand(999, at: t0, outcome: "none") == false)
        #expect(try journal.command(other)?.acknowledgedAt == nil, "only the named command is withdrawn")
    }

    @Test("the race: the coordinator acknowledged first, so withdrawing returns false and its answer stands",
          arguments: JournalKind.allCases)
    func withdrawLosesToAcknowledgement(kind: JournalKind) async throws {
        let (journal, cleanup) = try await kind.make()
        defer { cleanup.stop() }
        for accepted in [true, false] {
            let id = try journal.submitCommand("pause", arguments: "{}", at: t0)
            let answer = accepted ? "paused at step 2" : "not shifting"
            try journal.acknowledgeCommand(id, at: t0 + .seconds(4), accepted: accepted, outcome: answer)
            #expect(try journal.withdrawCommand(id, at: t0 + .seconds(5), outcome: "withdrawn") == false)
            let record = try #require(try journal.command(id))
            #expect(record.accepted == accepted)
            #expect(record.outcome == answer)
            #expect(record.acknowledgedAt == t0 + .seconds(4))
        }
    }

    @Test("an observation writes its sample and its state together; a fenced one writes neither", arguments: JournalKind.allCases)
    func observations(kind: JournalKind) async throws {
        let (journal, cleanup) = try await kind.make()
        defer { cleanup.stop() }
        let run = try journal.startRun(RunRecord(from: "blue", to: "green", policy: "p", startedAt: t0, pid: 1))
        let token = try journal.takeLease(holder: "pid 1", at: t0)
        let counters = ClusterCounters(responses: 10, responses2xx: 10, responses5xx: 0, sessionsTotal: 4,
                                       activeSessions: 1, weight: 128, responseTimeTotalMilliseconds: nil,
                                       responseTimeAverageMilliseconds: nil)
        var state = CutoverState.initial
        state.phase = .shifting
        state.lastSample = LoadBalancerSample(at: t0, clusters: ["blue": counters, "green": counters])
        try journal.recordObservation(run: run, at: t0, sample: state.lastSample, state: state, fence: token)
        #expect(try journal.samples(run: run, cluster: "green", since: t0).map(\.counters) == [counters])
        #expect(try journal.loadCutoverState(run: run) == state)
        #expect(try journal.loadState(run: run)?.at == t0)

        // A sample alone leaves the state as it was; a state alone adds no sample.
        let later = LoadBalancerSample(at: t0 + .seconds(1), clusters: ["blue": counters, "green": counters])
        try journal.recordObservation(run: run, at: t0 + .seconds(1), sample: later, state: nil as CutoverState?, fence: token)
        #expect(try journal.samples(run: run, cluster: "blue", since: t0).count == 2)
        #expect(try journal.loadState(run: run)?.at == t0)
        state.lastSample = later
        try journal.recordObservation(run: run, at: t0 + .seconds(2), sample: nil, state: state, fence: token)
        #expect(try journal.samples(run: run, cluster: "blue", since: t0).count == 2)
        #expect(try journal.loadCutoverState(run: run) == state)

        _ = try journal.takeLease(holder: "pid 2", at: t0 + .seconds(3))
        var deposed = state
        deposed.phase = .paused
        do {
            try journal.recordObservation(run: run, at: t0 + .seconds(3), sample: later, state: deposed, fence: token)
            Issue.record("a deposed holder's observation was written")
        } catch let error as StoreError {
            #expect(error.code == .fenced, "\(error)")
        }
        #expect(try journal.samples(run: run, cluster: "blue", since: t0).count == 2, "no sample written")
        #expect(try journal.loadCutoverState(run: run) == state, "nor its state")
    }

    @Test("samples round-trip, and pruning keeps the last hour whole and one per minute before it",
          arguments: JournalKind.allCases)
    func samplesAndPruning(kind: JournalKind) async throws {
        let (journal, cleanup) = try await kind.make()
        defer { cleanup.stop() }
        let run = try journal.startRun(RunRecord(from: "blue", to: "green", policy: "p", startedAt: t0, pid: 1))
        let start = Instant(millisecondsSinceEpoch: 1_800_000_000_000) // a whole minute
        let counters = ClusterCounters(responses: 10, responses2xx: 9, responses5xx: 1, sessionsTotal: 7,
                                       activeSessions: 3, weight: 128, responseTimeTotalMilliseconds: nil,
                                       responseTimeAverageMilliseconds: 12.5)
        // Three hours, one sample every 2 s, two clusters.
        try journal.recordSamples(run: run, (0..<(3 * 1800)).map { i in
            var c = counters
            c.responses += Int64(i)
            return LoadBalancerSample(at: start + .seconds(2 * i), clusters: ["blue": c, "green": c])
        })
        let first = try journal.samples(run: run, cluster: "green", since: start)
        #expect(first.count == 5400)
        #expect(first[0].counters == counters)
        let now = start + .seconds(3 * 3600)
        let deleted = try journal.pruneSamples(now: now, retention: .standard)
        let green = try journal.samples(run: run, cluster: "green", since: start)
        let recent = green.filter { $0.at >= now - .seconds(3600) }
        #expect(recent.count == 1800, "the last hour keeps every sample")
        #expect(green.count - recent.count == 120, "two older hours keep one sample a minute")
        #expect(deleted == 2 * (5400 - 1800 - 120))
        #expect(try journal.pruneSamples(now: now, retention: .standard) == 0, "pruning again removes nothing")
    }
}

@Suite("SQLite journal: one file, several processes")
struct SQLiteJournalFileTests {
    @Test("the journal survives closing and reopening, in WAL mode with synchronous FULL")
    func survivesReopening() async throws {
        let dir = try TemporaryDirectory.make("reopen")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("state.db").path
        var run: Int64 = 0
        do {
            let journal = try SQLiteJournal(path: path)
            run = try journal.startRun(RunRecord(from: "blue", to: "green", policy: "p", startedAt: t0, pid: 7))
            _ = try journal.beginIntent(run: run, at: t0, .setWeights(intent: 1, percentToTarget: 5, step: 1, purpose: .step))
            try journal.saveState(run: run, at: t0, CutoverState.initial)
        }
        let sqlite3 = try Tools.require("sqlite3")
        let mode = try await runTool(sqlite3, [path, "PRAGMA journal_mode;"])
        #expect(mode.output.trimmingCharacters(in: .whitespacesAndNewlines) == "wal")
        let reopened = try SQLiteJournal(path: path)
        let settings = try reopened.connectionSettings()
        #expect(settings["journal_mode"] == "wal")
        #expect(settings["synchronous"] == "2", "FULL")
        #expect(settings["busy_timeout"] == "5000")
        #expect(try reopened.latestRun()?.id == run)
        #expect(try reopened.unfinishedIntents(run: run).count == 1)
        #expect(try reopened.loadCutoverState(run: run) == CutoverState.initial)
    }

    @Test("observations are committed to the write-ahead log (another process reads them) and leave the connection at FULL, also after a refused one")
    func observationDurability() async throws {
        let sqlite3 = try Tools.require("sqlite3")
        let dir = try TemporaryDirectory.make("observation")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("state.db").path
        let journal = try SQLiteJournal(path: path)
        let run = try journal.startRun(RunRecord(from: "blue", to: "green", policy: "p", startedAt: t0, pid: 7))
        let token = try journal.takeLease(holder: "pid 7", at: t0)
        let counters = ClusterCounters(responses: 1, responses2xx: 1, responses5xx: 0, sessionsTotal: 1, activeSessions: 0,
                                       weight: 1, responseTimeTotalMilliseconds: nil, responseTimeAverageMilliseconds: nil)
        for i in 0..<20 {
            let sample = LoadBalancerSample(at: t0 + .milliseconds(250 * i), clusters: ["blue": counters, "green": counters])
            try journal.recordObservation(run: run, at: sample.at, sample: sample, state: CutoverState.initial, fence: token)
        }
        #expect(try journal.connectionSettings()["synchronous"] == "2", "back at FULL after observations")
        _ = try journal.takeLease(holder: "another", at: t0)
        #expect(throws: StoreError.self) {
            try journal.recordObservation(run: run, at: t0, sample: nil, state: CutoverState.initial, fence: token)
        }
        #expect(try journal.connectionSettings()["synchronous"] == "2", "back at FULL after a refused observation")
        // Committed to the write-ahead log, not only buffered in this process: another process reads them.
        let count = try await runTool(sqlite3, [path, "SELECT COUNT(*) FROM samples WHERE cluster = 'green';"])
        #expect(count.output.trimmingCharacters(in: .whitespacesAndNewlines) == "20")
    }

    @Test("another process reads while the coordinator writes, and its commands reach the coordinator")
    func concurrentReaderAndCommandsFromAnotherProcess() async throws {
        let sqlite3 = try Tools.require("sqlite3")
        let dir = try TemporaryDirectory.make("concurrent")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("state.db").path
        let journal = try SQLiteJournal(path: path)
        let run = try journal.startRun(RunRecord(from: "blue", to: "green", policy: "p", startedAt: t0, pid: 7))
        let total = 2_000
        let writer = Task.detached {
            for i in 0..<total {
                // Each write is its own fsynced transaction, as in a real run.
                try journal.append(JournalEvent(run: run, at: t0 + .milliseconds(Int64(i)), kind: "tick", detail: "\(i)"))
                // Spread over about two seconds, so reads interleave even where fsync is free.
                try await Task.sleep(for: .milliseconds(1))
            }
        }
        var counts: [Int] = []
        var failures: [String] = []
        while counts.last ?? 0 < total {
            let result = try await runTool(sqlite3, ["-cmd", ".timeout 5000", path, "SELECT count(*) FROM events;"])
            if result.status != 0 {
                failures.append(result.output)
                break
            }
            counts.append(Int(result.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1)
            if counts.count > 2_000 { break }
        }
        try await writer.value
        #expect(failures.isEmpty, "reader failed: \(failures)")
        #expect(counts.count >= 2, "the reader saw the table at least twice")
        #expect(counts == counts.sorted(), "a reader never sees rows disappear")
        #expect(counts.contains { $0 > 0 && $0 < total }, "some read happened while writes went on: \(counts.prefix(5))")

        // `switchover pause` in another process inserts a command; the coordinator sees it.
        let insert = try await runTool(sqlite3, ["-cmd", ".timeout 5000", path,
                                           "INSERT INTO commands(command, args, issued_at) VALUES ('pause', '{}', 1);"])
        #expect(insert.status == 0, "\(insert.output)")
        let pending = try journal.pendingCommands()
        #expect(pending.map(\.command) == ["pause"])
        try journal.acknowledgeCommand(pending[0].id, at: t0, accepted: true, outcome: "paused")
        let ack = try await runTool(sqlite3, [path, "SELECT accepted, outcome FROM commands;"])
        #expect(ack.output.trimmingCharacters(in: .whitespacesAndNewlines) == "1|paused")
    }
}

@Suite("Coordinator lock")
struct CoordinatorLockTests {
    /// Whether `isFree` holds within 2 s. A released lock is free at once, except that a child
    /// process another test spawns at that instant (tests run in parallel, in this process) holds
    /// a copy of every descriptor of ours from its fork to its exec, close-on-exec ones included:
    /// for that moment the flock's open file description, and so the lock, lives on in it.
    static func freed(_ isFree: () async throws -> Bool) async rethrows -> Bool {
        try await Wait.until(timeout: 2, every: .milliseconds(20), isFree)
    }

    @Test("a second lock in the same process, on another descriptor, is refused with the holder's PID and start")
    func sameProcessRefused() async throws {
        let dir = try TemporaryDirectory.make("lock")
        defer { try? FileManager.default.removeItem(at: dir) }
        let state = dir.appendingPathComponent("state.db").path
        let started = Date(timeIntervalSince1970: 1_800_000_000)
        let first = try CoordinatorLock(statePath: state, pid: 31337, startedAt: started)
        do {
            _ = try CoordinatorLock(statePath: state)
            Issue.record("the second lock was granted")
        } catch let error as StoreError {
            #expect(error.code == .lockHeld)
            #expect(error.context.contains("PID 31337"))
            #expect(error.context.contains("2027-01-15T08:00:00Z"))
        }
        #expect(CoordinatorLock.isHeld(statePath: state))
        first.release()
        #expect(await Self.freed { !CoordinatorLock.isHeld(statePath: state) }, "still held after release")
        let second = try CoordinatorLock(statePath: state)
        #expect(CoordinatorLock.holder(statePath: state)?.pid == getpid())
        second.release()
    }

    @Test("a lock held by another process refuses us, names it, and is freed by the kernel when it is killed")
    func otherProcess() async throws {
        let sh = try Tools.require("sh")
        _ = try Tools.require("flock")
        let dir = try TemporaryDirectory.make("lock-child")
        defer { try? FileManager.default.removeItem(at: dir) }
        let state = dir.appendingPathComponent("state.db").path
        let lockFile = CoordinatorLock.lockPath(forState: state)
        let ready = dir.appendingPathComponent("ready").path
        // The child takes the same flock with util-linux's flock(1), writes its PID the way a
        // coordinator does, and waits to be killed.
        let script = """
            exec 9<>"\(lockFile)"
            flock -x -n 9 || exit 3
            printf 'pid=%s\\nstarted=%s\\n' "$$" "2027-01-15T08:00:00Z" >&9
            touch "\(ready)"
            exec sleep 60
            """
        let child = try ManagedProcess(name: "lock-holder", executable: sh, arguments: ["-c", script],
                                       logFile: dir.appendingPathComponent("child.log"))
        defer { child.stopInBackground() }
        await Wait.until(timeout: 10) { FileManager.default.fileExists(atPath: ready) || !child.isRunning }
        if !FileManager.default.fileExists(atPath: ready) && !child.isRunning {
            Issue.record("child exited: \(child.logTail())"); return
        }
        try #require(FileManager.default.fileExists(atPath: ready), "the child never took the lock")
        do {
            _ = try CoordinatorLock(statePath: state)
            Issue.record("the lock was granted while another process holds it")
        } catch let error as StoreError {
            #expect(error.code == .lockHeld)
            #expect(error.context.contains("PID \(child.pid)"))
        }
        child.signal(SIGKILL)
        #expect(await child.waitForExit(timeout: 10))
        let mine = try CoordinatorLock(statePath: state)
        // And the other way round: while we hold it, another process cannot take it.
        let attempt = try await runTool(try Tools.require("flock"), ["-x", "-n", lockFile, "true"])
        #expect(attempt.status != 0, "flock(1) got the lock we hold")
        mine.release()
        let flock = try Tools.require("flock")
        #expect(try await Self.freed { try await runTool(flock, ["-x", "-n", lockFile, "true"]).status == 0 },
                "flock(1) could not take the lock we released")
    }
}
