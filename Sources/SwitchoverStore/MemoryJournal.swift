import Foundation
import SwitchoverCore

/// A journal in memory with the same semantics as `SQLiteJournal`, for tests of the runtime
/// that do not need a file. Every operation is atomic under one lock, fencing included.
///
/// `@unchecked Sendable`: all state is guarded by `lock`.
public final class MemoryJournal: JournalStore, @unchecked Sendable {
    private struct Tables {
        var runs: [RunRecord] = []
        var events: [JournalEvent] = []
        var gateEvaluations: [GateEvaluationRecord] = []
        var commands: [CommandRecord] = []
        var samples: [(run: Int64, at: Instant, cluster: String, counters: ClusterCounters)] = []
        var states: [Int64: (at: Instant, json: String)] = [:]
        var nextSequence: Int64 = 1
        var leaseToken: Int64 = 0
    }

    private var tables = Tables()
    private let lock = NSRecursiveLock()

    public init() {}

    private func locked<T>(_ body: (inout Tables) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&tables)
    }

    public func startRun(_ run: RunRecord) throws -> Int64 {
        locked {
            var run = run
            run.id = Int64($0.runs.count + 1)
            $0.runs.append(run)
            return run.id
        }
    }

    public func latestRun() throws -> RunRecord? { locked { $0.runs.last } }

    public func run(id: Int64) throws -> RunRecord? { locked { tables in tables.runs.first { $0.id == id } } }

    @discardableResult
    public func append(_ event: JournalEvent, fence: Int64?) throws -> Int64 {
        try locked {
            try Self.check(fence, $0)
            var event = event
            event.sequence = $0.nextSequence
            $0.nextSequence += 1
            $0.events.append(event)
            return event.sequence
        }
    }

    public func events(run: Int64, afterSequence: Int64, limit: Int) throws -> [JournalEvent] {
        locked { Array($0.events.filter { $0.run == run && $0.sequence > afterSequence }.prefix(limit)) }
    }

    public func lastEvent(run: Int64, kind: String) throws -> JournalEvent? {
        locked { $0.events.last { $0.run == run && $0.kind == kind } }
    }

    public func beginIntent(run: Int64, at: Instant, action: String, detail: String, state: String?,
                            fence: Int64?) throws -> Int64 {
        try locked { tables in
            try Self.check(fence, tables)
            if let state { tables.states[run] = (at, state) }
            let sequence = tables.nextSequence
            tables.nextSequence += 1
            tables.events.append(JournalEvent(sequence: sequence, run: run, at: at, kind: "intent",
                                              detail: try SQLiteJournal.intentDetail(action, detail), intentID: sequence))
            return sequence
        }
    }

    public func finishIntent(_ intent: Int64, at: Instant, ok: Bool, detail: String) throws {
        let run = locked { $0.events.first { $0.sequence == intent && $0.kind == "intent" }?.run }
        guard let run else { throw StoreError(.corrupt, "memory journal: no intent \(intent) to finish") }
        try append(JournalEvent(run: run, at: at, kind: "result", detail: detail, intentID: intent, ok: ok))
    }

    public func unfinishedIntents(run: Int64) throws -> [JournalEvent] {
        locked { tables in
            let finished = Set(tables.events.filter { $0.kind == "result" }.compactMap(\.intentID))
            return tables.events.filter { $0.run == run && $0.kind == "intent" && !finished.contains($0.sequence) }
        }
    }

    public func recordGateEvaluation(_ evaluation: GateEvaluationRecord) throws {
        locked { $0.gateEvaluations.append(evaluation) }
    }

    public func gateEvaluations(run: Int64, limit: Int) throws -> [GateEvaluationRecord] {
        locked { Array($0.gateEvaluations.filter { $0.run == run }.suffix(limit)) }
    }

    public func submitCommand(_ command: String, arguments: String, at: Instant) throws -> Int64 {
        locked {
            let id = Int64($0.commands.count + 1)
            $0.commands.append(CommandRecord(id: id, command: command, arguments: arguments, issuedAt: at,
                                             acknowledgedAt: nil, accepted: nil, outcome: nil))
            return id
        }
    }

    public func pendingCommands() throws -> [CommandRecord] {
        locked { $0.commands.filter { $0.acknowledgedAt == nil } }
    }

    private static func check(_ fence: Int64?, _ tables: Tables) throws {
        if let fence, fence != tables.leaseToken {
            throw StoreError(.fenced, "memory journal: lease token \(fence) was taken over (token \(tables.leaseToken) now); nothing written")
        }
    }

    public func acknowledgeCommand(_ id: Int64, at: Instant, accepted: Bool, outcome: String, fence: Int64?) throws {
        try locked { tables in
            try Self.check(fence, tables)
            guard let index = tables.commands.firstIndex(where: { $0.id == id }),
                  tables.commands[index].acknowledgedAt == nil else { return }
            tables.commands[index].acknowledgedAt = at
            tables.commands[index].accepted = accepted
            tables.commands[index].outcome = outcome
        }
    }

    public func withdrawCommand(_ id: Int64, at: Instant, outcome: String) throws -> Bool {
        locked { tables in
            guard let index = tables.commands.firstIndex(where: { $0.id == id }),
                  tables.commands[index].acknowledgedAt == nil else { return false }
            tables.commands[index].acknowledgedAt = at
            tables.commands[index].accepted = false
            tables.commands[index].outcome = outcome
            return true
        }
    }

    public func command(_ id: Int64) throws -> CommandRecord? {
        locked { $0.commands.first { $0.id == id } }
    }

    public func recordSample(run: Int64, _ sample: LoadBalancerSample) throws {
        locked { tables in
            for (cluster, counters) in sample.journaledSeries {
                tables.samples.append((run, sample.at, cluster, counters))
            }
        }
    }

    public func recordSamples(run: Int64, _ samples: [LoadBalancerSample]) throws {
        for sample in samples { try recordSample(run: run, sample) }
    }

    public func recordObservation(run: Int64, at: Instant, sample: LoadBalancerSample?, state: String?, fence: Int64?) throws {
        try locked { tables in
            try Self.check(fence, tables)
            if let sample {
                for (cluster, counters) in sample.journaledSeries { tables.samples.append((run, sample.at, cluster, counters)) }
            }
            if let state { tables.states[run] = (at, state) }
        }
    }

    public func takeLease(holder: String, at: Instant) throws -> Int64 {
        locked { tables in
            tables.leaseToken += 1
            return tables.leaseToken
        }
    }

    public func leaseToken() throws -> Int64 { locked { $0.leaseToken } }

    public func samples(run: Int64, cluster: String, since: Instant) throws -> [(at: Instant, counters: ClusterCounters)] {
        locked { tables in
            tables.samples.filter { $0.run == run && $0.cluster == cluster && $0.at >= since }
                .sorted { $0.at < $1.at }
                .map { ($0.at, $0.counters) }
        }
    }

    @discardableResult
    public func pruneSamples(now: Instant, retention: SampleRetention) throws -> Int {
        locked { tables in
            let cutoff = now - retention.fullResolution
            let bucket = max(1, retention.bucket.milliseconds)
            var seen = Set<String>()
            let before = tables.samples.count
            tables.samples = tables.samples.filter { row in
                guard row.at < cutoff else { return true }
                return seen.insert("\(row.run)/\(row.cluster)/\(row.at.millisecondsSinceEpoch / bucket)").inserted
            }
            return before - tables.samples.count
        }
    }

    public func saveState(run: Int64, at: Instant, json: String, fence: Int64?) throws {
        try locked {
            try Self.check(fence, $0)
            $0.states[run] = (at, json)
        }
    }

    public func loadState(run: Int64) throws -> (at: Instant, json: String)? {
        locked { $0.states[run] }
    }
}
