import CSQLite
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SwitchoverCore

/// The embedded journal: one SQLite file at `--state`.
///
/// WAL mode so readers (`status`, `report`, another process's `pause`) never block the
/// coordinator and the coordinator never blocks them; `synchronous=FULL` so a write that
/// returned survives a power cut, not only a crash of the process; `busy_timeout` so a
/// command inserted by another process waits for the coordinator's write instead of failing.
///
/// `@unchecked Sendable`: the connection and every prepared statement are only touched under
/// `lock`, so one journal may be shared by the runtime's tasks. Statements are prepared once and
/// cached; the connection outlives them (each statement holds it).
public final class SQLiteJournal: JournalStore, @unchecked Sendable {
    public let path: String
    private let connection: SQLiteConnection
    private var statements: [String: SQLiteStatement] = [:]
    private let lock = NSRecursiveLock()
    private var transactionDepth = 0
    /// Set while the connection may still be at `synchronous=NORMAL` after an observation.
    private var mustRestoreFull = false

    /// Milliseconds a statement waits for another connection's write lock before failing.
    public static let busyTimeoutMilliseconds: Int32 = 5_000

    /// Opens (creating if needed) the journal at `path` and its schema.
    public init(path: String) throws {
        self.path = path
        try Self.checkIsFile(path)
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        connection = try SQLiteConnection(path: path)
        sqlite3_busy_timeout(connection.handle, Self.busyTimeoutMilliseconds)
        var mode = ""
        let pragma = try connection.prepare("PRAGMA journal_mode=WAL")
        // A new journal opened by two processes at once (`run` creating it while `status` looks)
        // can answer "database is locked" at once, without SQLite's busy handler (it would
        // deadlock otherwise): retried within the same busy timeout.
        try Self.retryingWhileLocked { try pragma.run([]) { mode = $0.text(0) } }
        guard mode.lowercased() == "wal" else {
            throw StoreError(.open, "\(path): SQLite refused WAL mode (got \(mode)); is the file on a network filesystem?")
        }
        try connection.execute("PRAGMA synchronous=FULL")
        try connection.execute("PRAGMA foreign_keys=ON")
        try Self.retryingWhileLocked { try connection.execute(Self.schema) }
    }

    /// `body` again every 10 ms while it fails with "database is locked", for at most the busy
    /// timeout; any other error, or the last one, is thrown.
    static func retryingWhileLocked(_ body: () throws -> Void) throws {
        let deadline = Date().addingTimeInterval(Double(busyTimeoutMilliseconds) / 1000)
        while true {
            do {
                return try body()
            } catch where "\(error)".contains("database is locked") && Date() < deadline {
                usleep(10_000)
            }
        }
    }

    /// Opens an existing journal for reading only (`report`): nothing is created or changed, and
    /// a missing file is a `StoreError(.open)`. Writes through it fail with SQLite's "readonly".
    public init(readOnlyPath path: String) throws {
        self.path = path
        try Self.checkExisting(path)
        connection = try SQLiteConnection(path: path, readOnly: true)
        sqlite3_busy_timeout(connection.handle, Self.busyTimeoutMilliseconds)
    }

    /// Opens an existing journal as an immutable snapshot of its main file, for when it cannot be
    /// opened otherwise (a read-only filesystem, a full disk, no `-shm` file): what the last
    /// writer left only in the write-ahead log is not seen (see `writeAheadLogPending`).
    public init(snapshotPath path: String) throws {
        self.path = path
        try Self.checkExisting(path)
        connection = try SQLiteConnection(path: path, immutable: true)
    }

    /// True when the journal at `path` has a non-empty write-ahead log: a snapshot of the main
    /// file alone may be behind it (a coordinator died without a checkpoint).
    public static func writeAheadLogPending(path: String) -> Bool {
        let size = (try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? Int
        return (size ?? 0) > 0
    }

    /// For the readers: a journal must already be there, as a regular file.
    static func checkExisting(_ path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError(.open, "\(path): no journal there (no run has been started with this --state)")
        }
        try checkIsFile(path)
    }

    /// A journal is a regular file (or none yet). SQLite given a directory fails obscurely, and
    /// given a FIFO it blocks: say what is there instead.
    static func checkIsFile(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else { return }  // nothing there yet: created on open
        let kind: String
        switch info.st_mode & S_IFMT {
        case S_IFREG: return
        case S_IFDIR: kind = "a directory"
        case S_IFIFO: kind = "a FIFO"
        case S_IFSOCK: kind = "a socket"
        case S_IFCHR, S_IFBLK: kind = "a device"
        default: kind = "not a regular file"
        }
        throw StoreError(.open, "\(path) is \(kind), not a journal file")
    }

    static let schema = """
        CREATE TABLE IF NOT EXISTS runs(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            from_cluster TEXT NOT NULL, to_cluster TEXT NOT NULL, policy TEXT NOT NULL,
            started_at INTEGER NOT NULL, pid INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS events(
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            time INTEGER NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL,
            intent_id INTEGER, ok INTEGER);
        CREATE INDEX IF NOT EXISTS events_run ON events(run_id, seq);
        CREATE INDEX IF NOT EXISTS events_intent ON events(intent_id) WHERE intent_id IS NOT NULL;
        CREATE TABLE IF NOT EXISTS gate_evaluations(
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            time INTEGER NOT NULL, step INTEGER NOT NULL, gate TEXT NOT NULL,
            verdict TEXT NOT NULL, value REAL, detail TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS gate_evaluations_run ON gate_evaluations(run_id, seq);
        CREATE TABLE IF NOT EXISTS commands(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            command TEXT NOT NULL, args TEXT NOT NULL, issued_at INTEGER NOT NULL,
            acknowledged_at INTEGER, accepted INTEGER, outcome TEXT);
        CREATE TABLE IF NOT EXISTS samples(
            run_id INTEGER NOT NULL REFERENCES runs(id),
            time INTEGER NOT NULL, cluster TEXT NOT NULL,
            responses INTEGER NOT NULL, responses_2xx INTEGER NOT NULL, responses_5xx INTEGER NOT NULL,
            sessions_total INTEGER NOT NULL, active_sessions INTEGER NOT NULL, weight INTEGER NOT NULL,
            rtime_total REAL, rtime_average REAL);
        CREATE INDEX IF NOT EXISTS samples_time ON samples(run_id, cluster, time);
        CREATE TABLE IF NOT EXISTS engine_state(
            run_id INTEGER PRIMARY KEY REFERENCES runs(id),
            time INTEGER NOT NULL, json TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS lease(
            id INTEGER PRIMARY KEY CHECK (id = 1),
            token INTEGER NOT NULL, holder TEXT NOT NULL, since INTEGER NOT NULL);
        """

    /// This connection's `journal_mode`, `synchronous` (2 is FULL) and `busy_timeout`, as SQLite
    /// reports them: the durability settings are per connection, so only the journal can say.
    public func connectionSettings() throws -> [String: String] {
        var settings: [String: String] = [:]
        for name in ["journal_mode", "synchronous", "busy_timeout"] {
            try with("PRAGMA \(name)") { statement in
                try statement.run([]) { settings[name] = $0.text(0) }
            }
        }
        return settings
    }

    /// Runs `body` under the lock with the cached statement for `sql`.
    private func with<T>(_ sql: String, _ body: (SQLiteStatement) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(statement(sql))
    }

    private func statement(_ sql: String) throws -> SQLiteStatement {
        if let cached = statements[sql] { return cached }
        let prepared = try connection.prepare(sql)
        statements[sql] = prepared
        return prepared
    }

    /// Runs `body` in one transaction: all of its writes land, or none. Not part of
    /// `JournalStore` (a compare-and-swap store has no open transactions): this journal's own
    /// atomic operations use it.
    func inTransaction<T>(_ body: () throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        // Inside another: part of it (its writes land with the outer ones, or none do).
        if transactionDepth > 0 { return try body() }
        if mustRestoreFull {
            // An observation could not set the connection back to FULL: no write goes at less.
            try connection.execute("PRAGMA synchronous=FULL")
            mustRestoreFull = false
        }
        // IMMEDIATE takes the write lock now, so the body never fails half-way on a busy database.
        try connection.execute("BEGIN IMMEDIATE")
        transactionDepth += 1
        defer { transactionDepth -= 1 }
        // The body calls back into the journal: the lock is recursive for that.
        do {
            let result = try body()
            try connection.execute("COMMIT")
            return result
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
    }

    // MARK: - Runs

    public func startRun(_ run: RunRecord) throws -> Int64 {
        try with("INSERT INTO runs(from_cluster, to_cluster, policy, started_at, pid) VALUES (?, ?, ?, ?, ?)") {
            try $0.run([.text(run.from), .text(run.to), .text(run.policy), .int(run.startedAt.millisecondsSinceEpoch),
                        .int(Int64(run.pid))])
            return connection.lastInsertRowID
        }
    }

    public func latestRun() throws -> RunRecord? {
        try with("SELECT id, from_cluster, to_cluster, policy, started_at, pid FROM runs ORDER BY id DESC LIMIT 1") {
            var run: RunRecord?
            try $0.run([]) { row in
                run = RunRecord(id: row.int(0), from: row.text(1), to: row.text(2), policy: row.text(3),
                                startedAt: Instant(millisecondsSinceEpoch: row.int(4)), pid: Int32(truncatingIfNeeded: row.int(5)))
            }
            return run
        }
    }

    public func run(id: Int64) throws -> RunRecord? {
        try with("SELECT id, from_cluster, to_cluster, policy, started_at, pid FROM runs WHERE id = ?") {
            var run: RunRecord?
            try $0.run([.int(id)]) { row in
                run = RunRecord(id: row.int(0), from: row.text(1), to: row.text(2), policy: row.text(3),
                                startedAt: Instant(millisecondsSinceEpoch: row.int(4)), pid: Int32(truncatingIfNeeded: row.int(5)))
            }
            return run
        }
    }

    // MARK: - Events and intents

    @discardableResult
    public func append(_ event: JournalEvent, fence: Int64?) throws -> Int64 {
        try fenced(fence) {
            try with("INSERT INTO events(run_id, time, kind, detail, intent_id, ok) VALUES (?, ?, ?, ?, ?, ?)") {
                try $0.run([.int(event.run), .int(event.at.millisecondsSinceEpoch), .text(event.kind), .text(event.detail),
                            .optional(event.intentID), .optional(event.ok.map { $0 ? Int64(1) : 0 })])
                return connection.lastInsertRowID
            }
        }
    }

    /// Runs `body` alone when `fence` is nil; otherwise in one transaction that first checks
    /// `fence` is still the lease's token (`StoreError.Code.fenced` when not, nothing written).
    /// `body` in one transaction, only while `fence` (when given) is the lease's token.
    private func fenced<T>(_ fence: Int64?, _ body: () throws -> T) throws -> T {
        try inTransaction {
            if let fence { try checkFence(fence) }
            return try body()
        }
    }

    private func checkFence(_ fence: Int64) throws {
        let current = try leaseToken()
        guard current == fence else {
            throw StoreError(.fenced, "\(path): this coordinator's lease (token \(fence)) was taken over (token \(current) now); nothing written")
        }
    }

    private static let eventColumns = "seq, run_id, time, kind, detail, intent_id, ok"

    private static func event(_ row: SQLiteStatement) -> JournalEvent {
        JournalEvent(sequence: row.int(0), run: row.int(1), at: Instant(millisecondsSinceEpoch: row.int(2)),
                     kind: row.text(3), detail: row.text(4), intentID: row.optionalInt(5),
                     ok: row.optionalInt(6).map { $0 != 0 })
    }

    public func events(run: Int64, afterSequence: Int64, limit: Int) throws -> [JournalEvent] {
        try with("SELECT \(Self.eventColumns) FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?") {
            var events: [JournalEvent] = []
            try $0.run([.int(run), .int(afterSequence), .int(Int64(limit))]) { events.append(Self.event($0)) }
            return events
        }
    }

    public func lastEvent(run: Int64, kind: String) throws -> JournalEvent? {
        try with("SELECT \(Self.eventColumns) FROM events WHERE run_id = ? AND kind = ? ORDER BY seq DESC LIMIT 1") {
            var event: JournalEvent?
            try $0.run([.int(run), .text(kind)]) { event = Self.event($0) }
            return event
        }
    }

    public func beginIntent(run: Int64, at: Instant, action: String, detail: String, state: String?,
                            fence: Int64?) throws -> Int64 {
        try inTransaction {
            // IMMEDIATE holds the write lock from here: no lease can be taken between the check
            // and the insert.
            if let fence { try checkFence(fence) }
            // The intent's id is its own sequence number, written into the row so that `result`
            // rows can point at it with the same column.
            let seq = try append(JournalEvent(run: run, at: at, kind: "intent", detail: try Self.intentDetail(action, detail)), fence: nil)
            try with("UPDATE events SET intent_id = seq WHERE seq = ?") { try $0.run([.int(seq)]) }
            if let state { try saveState(run: run, at: at, json: state, fence: nil) }
            return seq
        }
    }

    // MARK: - Lease

    public func takeLease(holder: String, at: Instant) throws -> Int64 {
        try inTransaction {
            try with("""
                INSERT INTO lease(id, token, holder, since) VALUES (1, 1, ?, ?)
                ON CONFLICT(id) DO UPDATE SET token = token + 1, holder = excluded.holder, since = excluded.since
                """) { try $0.run([.text(holder), .int(at.millisecondsSinceEpoch)]) }
            return try leaseToken()
        }
    }

    public func leaseToken() throws -> Int64 {
        try with("SELECT token FROM lease WHERE id = 1") {
            var token: Int64 = 0
            try $0.run([]) { token = $0.int(0) }
            return token
        }
    }

    static func intentDetail(_ action: String, _ detail: String) throws -> String {
        // {"action": ..., "detail": ...} with the detail kept verbatim when it is JSON already
        // (the engine's are, from `JournalJSON`), the strings quoted by `JournalJSON` too:
        // `JSONSerialization`'s sorted keys compare through a `Locale`, which loads ICU.
        let isJSON = (try? JSONSerialization.jsonObject(with: Data(detail.utf8), options: [.fragmentsAllowed])) != nil
        return "{\"action\":\(try JournalJSON.encode(action)),\"detail\":\(isJSON ? detail : try JournalJSON.encode(detail))}"
    }

    public func finishIntent(_ intent: Int64, at: Instant, ok: Bool, detail: String) throws {
        let run: Int64? = try with("SELECT run_id FROM events WHERE seq = ? AND kind = 'intent'") {
            var run: Int64?
            try $0.run([.int(intent)]) { run = $0.int(0) }
            return run
        }
        guard let run else { throw StoreError(.corrupt, "\(path): no intent \(intent) to finish") }
        try append(JournalEvent(run: run, at: at, kind: "result", detail: detail, intentID: intent, ok: ok), fence: nil)
    }

    public func unfinishedIntents(run: Int64) throws -> [JournalEvent] {
        let sql = """
            SELECT \(Self.eventColumns) FROM events i WHERE i.run_id = ? AND i.kind = 'intent'
            AND NOT EXISTS (SELECT 1 FROM events r WHERE r.kind = 'result' AND r.intent_id = i.seq) ORDER BY i.seq
            """
        return try with(sql) {
            var events: [JournalEvent] = []
            try $0.run([.int(run)]) { events.append(Self.event($0)) }
            return events
        }
    }

    // MARK: - Gate evaluations

    public func recordGateEvaluation(_ e: GateEvaluationRecord) throws {
        try with("INSERT INTO gate_evaluations(run_id, time, step, gate, verdict, value, detail) VALUES (?, ?, ?, ?, ?, ?, ?)") {
            try $0.run([.int(e.run), .int(e.at.millisecondsSinceEpoch), .int(Int64(e.step)), .text(e.gate),
                        .text(e.outcome.verdict.rawValue), .optional(e.outcome.value), .text(e.outcome.detail)])
        }
    }

    public func gateEvaluations(run: Int64, limit: Int) throws -> [GateEvaluationRecord] {
        // The newest `limit`, returned oldest first.
        let sql = """
            SELECT time, step, gate, verdict, value, detail FROM
            (SELECT * FROM gate_evaluations WHERE run_id = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq
            """
        return try with(sql) {
            var records: [GateEvaluationRecord] = []
            try $0.run([.int(run), .int(Int64(limit))]) { row in
                guard let verdict = GateVerdict(rawValue: row.text(3)) else {
                    throw StoreError(.corrupt, "\(path): gate evaluation with verdict \(row.text(3))")
                }
                records.append(GateEvaluationRecord(
                    run: run, at: Instant(millisecondsSinceEpoch: row.int(0)), step: Int(row.int(1)), gate: row.text(2),
                    outcome: GateOutcome(verdict, value: row.optionalDouble(4), detail: row.text(5))))
            }
            return records
        }
    }

    // MARK: - Commands

    public func submitCommand(_ command: String, arguments: String, at: Instant) throws -> Int64 {
        try with("INSERT INTO commands(command, args, issued_at) VALUES (?, ?, ?)") {
            try $0.run([.text(command), .text(arguments), .int(at.millisecondsSinceEpoch)])
            return connection.lastInsertRowID
        }
    }

    private static let commandColumns = "id, command, args, issued_at, acknowledged_at, accepted, outcome"

    private static func commandRecord(_ row: SQLiteStatement) -> CommandRecord {
        CommandRecord(id: row.int(0), command: row.text(1), arguments: row.text(2),
                      issuedAt: Instant(millisecondsSinceEpoch: row.int(3)),
                      acknowledgedAt: row.optionalInt(4).map { Instant(millisecondsSinceEpoch: $0) },
                      accepted: row.optionalInt(5).map { $0 != 0 }, outcome: row.optionalText(6))
    }

    public func pendingCommands() throws -> [CommandRecord] {
        try with("SELECT \(Self.commandColumns) FROM commands WHERE acknowledged_at IS NULL ORDER BY id") {
            var records: [CommandRecord] = []
            try $0.run([]) { records.append(Self.commandRecord($0)) }
            return records
        }
    }

    public func acknowledgeCommand(_ id: Int64, at: Instant, accepted: Bool, outcome: String, fence: Int64?) throws {
        try fenced(fence) {
            try with("UPDATE commands SET acknowledged_at = ?, accepted = ?, outcome = ? WHERE id = ? AND acknowledged_at IS NULL") {
                try $0.run([.int(at.millisecondsSinceEpoch), .int(accepted ? 1 : 0), .text(outcome), .int(id)])
            }
        }
    }

    public func withdrawCommand(_ id: Int64, at: Instant, outcome: String) throws -> Bool {
        try with("UPDATE commands SET acknowledged_at = ?, accepted = 0, outcome = ? WHERE id = ? AND acknowledged_at IS NULL") {
            try $0.run([.int(at.millisecondsSinceEpoch), .text(outcome), .int(id)])
            return connection.changes == 1
        }
    }

    public func command(_ id: Int64) throws -> CommandRecord? {
        try with("SELECT \(Self.commandColumns) FROM commands WHERE id = ?") {
            var record: CommandRecord?
            try $0.run([.int(id)]) { record = Self.commandRecord($0) }
            return record
        }
    }

    // MARK: - Samples

    public func recordSample(run: Int64, _ sample: LoadBalancerSample) throws {
        // One sample's rows (every cluster, and every service's with several services) in one
        // transaction: one commit and one fsync per sample, not one per row (8 with 3 services).
        try inTransaction { try insertSample(run: run, sample) }
    }

    private func insertSample(run: Int64, _ sample: LoadBalancerSample) throws {
        let sql = """
            INSERT INTO samples(run_id, time, cluster, responses, responses_2xx, responses_5xx, sessions_total,
            active_sessions, weight, rtime_total, rtime_average) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """
        try with(sql) { statement in
            for (cluster, c) in sample.journaledSeries {
                try statement.run([.int(run), .int(sample.at.millisecondsSinceEpoch), .text(cluster), .int(c.responses),
                                   .int(c.responses2xx), .int(c.responses5xx), .int(c.sessionsTotal),
                                   .int(Int64(c.activeSessions)), .int(Int64(c.weight)),
                                   .optional(c.responseTimeTotalMilliseconds), .optional(c.responseTimeAverageMilliseconds)])
            }
        }
    }

    /// One transaction at `synchronous=NORMAL`: in WAL mode its commit appends to the log without
    /// an fsync (the operating system has it, so a killed coordinator loses nothing); the next
    /// commit at `FULL` (every other write) syncs the log and with it every observation before.
    /// The connection is back at `FULL` before this returns, or the error says it could not be.
    public func recordObservation(run: Int64, at: Instant, sample: LoadBalancerSample?, state: String?, fence: Int64?) throws {
        guard sample != nil || state != nil else { return }
        lock.lock()
        defer { lock.unlock() }
        // The setting applies to the transactions begun after it: never inside one.
        precondition(transactionDepth == 0, "SQLiteJournal.recordObservation inside a transaction")
        try connection.execute("PRAGMA synchronous=NORMAL")
        let written = Result {
            try fenced(fence) {
                if let sample { try insertSample(run: run, sample) }
                if let state { try upsertState(run: run, at: at, json: state) }
            }
        }
        do {
            try connection.execute("PRAGMA synchronous=FULL")
        } catch {
            mustRestoreFull = true  // the next write sets it first, or fails
            throw error
        }
        try written.get()
    }

    public func recordSamples(run: Int64, _ samples: [LoadBalancerSample]) throws {
        try inTransaction {
            for sample in samples { try insertSample(run: run, sample) }
        }
    }

    public func samples(run: Int64, cluster: String, since: Instant) throws -> [(at: Instant, counters: ClusterCounters)] {
        let sql = """
            SELECT time, responses, responses_2xx, responses_5xx, sessions_total, active_sessions, weight, rtime_total,
            rtime_average FROM samples WHERE run_id = ? AND cluster = ? AND time >= ? ORDER BY time, rowid
            """
        return try with(sql) {
            var rows: [(at: Instant, counters: ClusterCounters)] = []
            try $0.run([.int(run), .text(cluster), .int(since.millisecondsSinceEpoch)]) { row in
                rows.append((Instant(millisecondsSinceEpoch: row.int(0)), ClusterCounters(
                    responses: row.int(1), responses2xx: row.int(2), responses5xx: row.int(3), sessionsTotal: row.int(4),
                    activeSessions: Int(row.int(5)), weight: Int(row.int(6)),
                    responseTimeTotalMilliseconds: row.optionalDouble(7), responseTimeAverageMilliseconds: row.optionalDouble(8))))
            }
            return rows
        }
    }

    @discardableResult
    public func pruneSamples(now: Instant, retention: SampleRetention) throws -> Int {
        // Older than the cutoff: keep the first sample of each (run, cluster, bucket), whose
        // bucket is the integer division of its time by the bucket length. Running it again
        // keeps the same rows, so it is safe to call as often as the runtime likes.
        let sql = """
            DELETE FROM samples WHERE time < ?1 AND rowid NOT IN
            (SELECT MIN(rowid) FROM samples WHERE time < ?1 GROUP BY run_id, cluster, time / ?2)
            """
        let cutoff = (now - retention.fullResolution).millisecondsSinceEpoch
        let bucket = max(1, retention.bucket.milliseconds)
        return try with(sql) {
            try $0.run([.int(cutoff), .int(bucket)])
            return connection.changes
        }
    }

    // MARK: - Engine state

    public func saveState(run: Int64, at: Instant, json: String, fence: Int64?) throws {
        try fenced(fence) { try upsertState(run: run, at: at, json: json) }
    }

    private func upsertState(run: Int64, at: Instant, json: String) throws {
        try with("INSERT INTO engine_state(run_id, time, json) VALUES (?, ?, ?) ON CONFLICT(run_id) DO UPDATE SET time = excluded.time, json = excluded.json") {
            try $0.run([.int(run), .int(at.millisecondsSinceEpoch), .text(json)])
        }
    }

    public func loadState(run: Int64) throws -> (at: Instant, json: String)? {
        try with("SELECT time, json FROM engine_state WHERE run_id = ?") {
            var state: (at: Instant, json: String)?
            try $0.run([.int(run)]) { state = (Instant(millisecondsSinceEpoch: $0.int(0)), $0.text(1)) }
            return state
        }
    }
}
