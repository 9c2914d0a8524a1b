import Foundation
import SwitchoverCore

/// The journal in etcd, under one key prefix (`--state etcd://HOST:PORT,.../PREFIX`): everything
/// `SQLiteJournal` records, with the same meaning, so that a coordinator on another machine can
/// take the run over (see `EtcdLease`).
///
/// Layout under PREFIX (ids zero-padded so that key order is numeric order):
///
/// | key | value |
/// |---|---|
/// | `meta` | `{"format":"switchover-journal","version":1}`: what says the prefix is ours |
/// | `leader` | the coordinator holding the lease (bound to its etcd lease); its create revision is the fencing token |
/// | `next/run`, `next/seq`, `next/command` | the last id given out, changed by compare-and-swap |
/// | `run/<id>` | a `RunRecord` |
/// | `events/<run>/<seq>` | a `JournalEvent`; intents and results are events too |
/// | `last/<run>/<kind>` | the sequence of the run's newest event of that kind |
/// | `open/<seq>` | an intent without a result (the value is its run) |
/// | `state/<run>` | the engine's state snapshot and when it was written |
/// | `samples/<run>/<ms>` | one sampling: every series (`journaledSeries`) of that instant |
/// | `gates/<run>/<ms>-<n>` | a gate evaluation |
/// | `command/<id>`, `pending/<id>` | a command, and its mark while nobody answered it |
///
/// Every write is one etcd transaction, so each operation is atomic on its own as the protocol
/// asks. Fenced writes compare the leader key's create revision with the writer's token (and an
/// intent's or a state's write, the state key's mod revision with the one this process last
/// wrote): a deposed coordinator's write fails whole, and says which compare failed.
///
/// Differences from SQLite, by nature: `recordSamples` and pruning write in transactions of at
/// most `batch` operations (etcd's limit is 128 per transaction); `takeLease(holder:at:)` takes
/// the leader key by force (tests, and the contract's shape; coordinators take it with an etcd
/// lease through `EtcdLease`) and its tokens are etcd revisions: increasing, not consecutive.
/// History: etcd keeps every revision until compacted, and the coordinator writes several a
/// second, so `pruneSamples` also compacts the history older than its previous call.
///
/// `@unchecked Sendable`: the caches (`sequence`, `stateRevisions`, ...) are guarded by `lock`;
/// the client is Sendable.
public final class EtcdJournal: JournalStore, @unchecked Sendable {
    public let client: EtcdClient
    /// Ends with `/`.
    public let prefix: String
    private let lock = NSRecursiveLock()
    /// The last `next/seq` this process wrote or read, and its mod revision: a writer alone on
    /// the journal (the coordinator) spends one transaction per event, not a read and a write.
    private var sequence: (value: Int64, revision: Int64)?
    /// The mod revision of each run's state key as this process last wrote or read it.
    private var stateRevisions: [Int64: Int64] = [:]
    /// The store revision at the previous prune: history before it is compacted at the next.
    private var compactBefore: Int64?
    private var gateCounter: Int64 = 0
    /// The run of each intent this process began or found open (`finishIntent` gets only its id).
    private var intentRuns: [Int64: Int64] = [:]
    /// Operations per transaction when writing many keys (etcd allows 128 by default).
    static let batch = 100
    static let format = #"{"format":"switchover-journal","version":1}"#

    /// Opens the journal under `prefix` (`/switchover/prod`). With `create`, an empty prefix
    /// becomes a journal (its `meta` key is written); without, an empty prefix is `nil`-worthy
    /// and `isEmpty` says so. A prefix holding keys that are not a Switchover journal throws
    /// `.open` naming one of them: nothing is written there.
    public init(client: EtcdClient, prefix: String, create: Bool) throws {
        self.client = client
        self.prefix = prefix.hasSuffix("/") ? prefix : prefix + "/"
        let meta = try client.get(key("meta"))
        if let meta {
            guard meta.valueText == Self.format else {
                throw StoreError(.open, "etcd prefix \(self.prefix) holds a \(key("meta")) key that is not a Switchover journal's; choose another prefix")
            }
            return
        }
        let any = try client.range(.prefix(self.prefix, limit: 1, keysOnly: true)).kvs?.first
        if let any {
            throw StoreError(.open, "etcd prefix \(self.prefix) holds data that is not a Switchover journal (key \(any.keyText)); choose another prefix")
        }
        guard create else { throw StoreError(.open, "etcd prefix \(self.prefix) holds no journal") }
        let made = try client.txn(TxnRequest(compare: [.created(key("meta"), at: 0)], success: [.put(key("meta"), Self.format)],
                                             failure: [.get(key("meta"))]))
        if !made.ok, made.read(0).first?.valueText != Self.format {
            throw StoreError(.open, "etcd prefix \(self.prefix): another writer put a \(key("meta")) that is not a Switchover journal's")
        }
    }

    /// Whether a journal exists under `prefix`, without creating one (`status` before any run).
    public static func exists(client: EtcdClient, prefix: String) throws -> Bool {
        let normalized = prefix.hasSuffix("/") ? prefix : prefix + "/"
        return try client.range(.prefix(normalized, limit: 1, keysOnly: true)).kvs?.isEmpty == false
    }

    // MARK: - Keys

    func key(_ parts: String...) -> String { prefix + parts.joined(separator: "/") }
    static func pad(_ n: Int64, _ width: Int = 12) -> String {
        let digits = String(n)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
    var leaderKey: String { key("leader") }
    func runKey(_ id: Int64) -> String { key("run", Self.pad(id)) }
    func eventKey(_ run: Int64, _ seq: Int64) -> String { key("events", Self.pad(run), Self.pad(seq, 16)) }
    func lastKey(_ run: Int64, _ kind: String) -> String { key("last", Self.pad(run), kind) }
    func openKey(_ seq: Int64) -> String { key("open", Self.pad(seq, 16)) }
    func stateKey(_ run: Int64) -> String { key("state", Self.pad(run)) }
    func sampleKey(_ run: Int64, _ at: Instant) -> String { key("samples", Self.pad(run), Self.pad(at.millisecondsSinceEpoch, 15)) }
    func commandKey(_ id: Int64) -> String { key("command", Self.pad(id)) }
    func pendingKey(_ id: Int64) -> String { key("pending", Self.pad(id)) }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    static func encode<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }

    func decode<T: Decodable>(_ type: T.Type, _ kv: KeyValue) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: kv.value?.data ?? Data())
        } catch {
            throw StoreError(.corrupt, "etcd key \(kv.keyText) does not hold a \(T.self): \(error)")
        }
    }

    /// Every key of a range, page by page (one etcd answer stays small).
    func all(from: String, to: String, keysOnly: Bool = false) throws -> [KeyValue] {
        var result: [KeyValue] = []
        var start = from
        while true {
            let page = try client.range(RangeRequest(from: start, to: to, limit: 1000, keysOnly: keysOnly))
            let kvs = page.kvs ?? []
            result += kvs
            guard page.more == true, let last = kvs.last else { return result }
            start = last.keyText + "\0"
        }
    }

    // MARK: - Fenced, counted writes

    /// The fence as a compare: the leader key was created at `fence` (the writer's token).
    func fenceCompare(_ fence: Int64?) -> [Compare] {
        fence.map { [.created(leaderKey, at: $0)] } ?? []
    }

    func fenced(_ fence: Int64, leader: KeyValue?) -> StoreError {
        let now = leader?.createRevision ?? 0
        return StoreError(.fenced, now == 0
            ? "the etcd journal's leader key is gone (this coordinator's token \(fence)): its lease ended; nothing written"
            : "the etcd journal's lease was taken over (token \(now), this coordinator's \(fence)); nothing written")
    }

    /// Gives out the next id of counter `name` and writes `ops(id)` with it in one transaction,
    /// fenced by `fence`, and (`state`) comparing the run's state key with the mod revision this
    /// process last saw. Retries while only the counter moved (another writer took an id).
    /// Returns the id and the transaction's revision.
    ///
    /// A transaction whose answer was lost (a member died after committing it, and the client
    /// asked the next one) is retried; the retry's compare then fails, and the journal reads
    /// back what it meant to write: when the id's first key (`ops(id).first`, always a put)
    /// holds exactly that value, the write landed, once, and counts as done.
    func counted(_ name: String, fence: Int64?, state run: Int64? = nil, while conditions: [Compare] = [],
                 _ ops: (Int64) throws -> [RequestOp]) throws -> (id: Int64, revision: Int64) {
        try locked {
            let counterKey = key("next", name)
            var cached: (value: Int64, revision: Int64)? = name == "seq" ? sequence : nil
            for _ in 0..<64 {
                let current: (value: Int64, revision: Int64)
                if let cached {
                    current = cached
                } else {
                    let kv = try client.get(counterKey)
                    current = (Int64(kv?.valueText ?? "0") ?? 0, kv?.modRevision ?? 0)
                }
                let next = current.value + 1
                var compares = [Compare.modified(counterKey, at: current.revision)] + fenceCompare(fence) + conditions
                let stateRevision = run.flatMap { stateRevisions[$0] }
                if let run, let stateRevision { compares.append(.modified(stateKey(run), at: stateRevision)) }
                let response = try client.txn(TxnRequest(
                    compare: compares,
                    success: [.put(counterKey, String(next))] + (try ops(next)),
                    failure: [.get(leaderKey), .get(counterKey)] + (run.map { [.get(stateKey($0))] } ?? [])
                        + conditions.map { .get($0.key.text) }))
                if response.ok {
                    if name == "seq" { sequence = (next, response.revision) }
                    return (next, response.revision)
                }
                if let fence, response.read(0).first?.createRevision != fence {
                    throw fenced(fence, leader: response.read(0).first)
                }
                if let run, let stateRevision, let state = response.read(2).first, state.modRevision != stateRevision {
                    throw StoreError(.fenced, "the etcd journal's state of run \(run) was changed by another writer (revision \(state.modRevision), this coordinator's \(stateRevision)); nothing written")
                }
                let conditionReads = response.read(1 + (run == nil ? 1 : 2))
                if !conditions.isEmpty, conditionReads.isEmpty, response.read(1).first?.modRevision == current.revision {
                    throw ConditionNoLongerHolds(keys: conditions.map(\.key.text))
                }
                let counter = response.read(1).first
                let moved = (Int64(counter?.valueText ?? "0") ?? 0, counter?.modRevision ?? 0)
                if moved.0 == next, let witness = try ops(next).first?.request_put,
                   let landed = try client.get(witness.key.text), landed.value?.data == witness.value.data {
                    // Our own earlier attempt, committed though its answer was lost.
                    if name == "seq" { sequence = moved }
                    if let run, stateRevision != nil, let state = response.read(2).first { stateRevisions[run] = state.modRevision }
                    return (next, landed.modRevision)
                }
                cached = moved
            }
            throw StoreError(.unavailable, "etcd journal: could not take an id from \(counterKey) after 64 tries (other writers kept taking them)")
        }
    }

    /// A fenced write of `ops` with no id, comparing the run's state key when `state`; returns
    /// the transaction's revision.
    func fencedWrite(fence: Int64?, state run: Int64?, _ ops: [RequestOp]) throws -> Int64 {
        try locked {
            var compares = fenceCompare(fence)
            let stateRevision = run.flatMap { stateRevisions[$0] }
            if let run, let stateRevision { compares.append(.modified(stateKey(run), at: stateRevision)) }
            if compares.isEmpty {
                return try client.txn(TxnRequest(compare: [], success: ops)).revision
            }
            let response = try client.txn(TxnRequest(compare: compares, success: ops,
                                                      failure: [.get(leaderKey)] + (run.map { [.get(stateKey($0))] } ?? [])))
            if response.ok { return response.revision }
            if let fence, response.read(0).first?.createRevision != fence { throw fenced(fence, leader: response.read(0).first) }
            // Our own earlier attempt, committed though its answer was lost: the state holds
            // exactly what this write puts there.
            if let run, let current = response.read(1).first,
               let put = ops.compactMap(\.request_put).first(where: { $0.key.text == stateKey(run) }),
               current.value?.data == put.value.data {
                return current.modRevision
            }
            let revision = response.read(1).first?.modRevision ?? 0
            throw StoreError(.fenced, "the etcd journal's state of run \(run ?? 0) was changed by another writer (revision \(revision), this coordinator's \(stateRevision ?? 0)); nothing written")
        }
    }

    // MARK: - Runs

    public func startRun(_ run: RunRecord) throws -> Int64 {
        try counted("run", fence: nil) { id in
            var record = run
            record.id = id
            return [.put(runKey(id), try Self.encode(record))]
        }.id
    }

    public func latestRun() throws -> RunRecord? {
        try client.range(.prefix(key("run") + "/", limit: 1, descending: true)).kvs?.first.map { try decode(RunRecord.self, $0) }
    }

    public func run(id: Int64) throws -> RunRecord? {
        try client.get(runKey(id)).map { try decode(RunRecord.self, $0) }
    }

    // MARK: - Events

    func eventOps(_ event: JournalEvent) throws -> [RequestOp] {
        [.put(eventKey(event.run, event.sequence), try Self.encode(event)),
         .put(lastKey(event.run, event.kind), String(event.sequence))]
    }

    @discardableResult
    public func append(_ event: JournalEvent, fence: Int64?) throws -> Int64 {
        try counted("seq", fence: fence) { seq in
            var event = event
            event.sequence = seq
            return try eventOps(event)
        }.id
    }

    public func events(run: Int64, afterSequence: Int64, limit: Int) throws -> [JournalEvent] {
        let response = try client.range(RangeRequest(from: eventKey(run, afterSequence + 1), to: key("events", Self.pad(run)) + "0",
                                                     limit: limit))
        return try (response.kvs ?? []).map { try decode(JournalEvent.self, $0) }
    }

    public func lastEvent(run: Int64, kind: String) throws -> JournalEvent? {
        guard let index = try client.get(lastKey(run, kind)), let seq = Int64(index.valueText) else { return nil }
        return try client.get(eventKey(run, seq)).map { try decode(JournalEvent.self, $0) }
    }

    // MARK: - Intents

    struct StoredState: Codable {
        var at: Int64
        var json: String
    }

    public func beginIntent(run: Int64, at: Instant, action: String, detail: String, state: String?, fence: Int64?) throws -> Int64 {
        let intentDetail = try SQLiteJournal.intentDetail(action, detail)
        let (seq, revision) = try counted("seq", fence: fence, state: state == nil ? nil : run) { seq in
            let event = JournalEvent(sequence: seq, run: run, at: at, kind: "intent", detail: intentDetail, intentID: seq)
            return try eventOps(event) + [.put(openKey(seq), String(run))]
                + (try state.map { [.put(stateKey(run), try Self.encode(StoredState(at: at.millisecondsSinceEpoch, json: $0)))] } ?? [])
        }
        locked {
            if state != nil { stateRevisions[run] = revision }
            intentRuns[seq] = run
        }
        return seq
    }

    public func finishIntent(_ intent: Int64, at: Instant, ok: Bool, detail: String) throws {
        // The intent's run: from this process's memory, else from its open mark.
        var run = locked { intentRuns[intent] }
        if run == nil, let open = try client.get(openKey(intent)) { run = Int64(open.valueText) }
        guard let run else { throw StoreError(.corrupt, "etcd journal: no open intent \(intent) to finish") }
        // Only while the intent is open: a coordinator deposed between its apply and this write
        // must not add a second result to an intent its successor finished.
        do {
            _ = try counted("seq", fence: nil, while: [.exists(openKey(intent))]) { seq in
                try eventOps(JournalEvent(sequence: seq, run: run, at: at, kind: "result", detail: detail, intentID: intent, ok: ok))
                    + [.delete(openKey(intent))]
            }
        } catch is ConditionNoLongerHolds {
            locked { _ = intentRuns.removeValue(forKey: intent) }
            throw StoreError(.fenced, "intent \(intent) was finished by another coordinator; this result was not written")
        }
        locked { _ = intentRuns.removeValue(forKey: intent) }
    }

    public func unfinishedIntents(run: Int64) throws -> [JournalEvent] {
        let open = try all(from: key("open") + "/", to: EtcdClient.prefixEnd(key("open") + "/"))
        return try open.filter { Int64($0.valueText) == run }.compactMap { kv in
            guard let seq = Int64(kv.keyText.split(separator: "/").last ?? "") else { return nil }
            locked { intentRuns[seq] = run }
            return try client.get(eventKey(run, seq)).map { try decode(JournalEvent.self, $0) }
        }
    }

    // MARK: - Gate evaluations

    public func recordGateEvaluation(_ evaluation: GateEvaluationRecord) throws {
        let n = locked { gateCounter += 1; return gateCounter }
        let key = key("gates", Self.pad(evaluation.run), Self.pad(evaluation.at.millisecondsSinceEpoch, 15) + "-"
                      + Self.pad(Int64(getpid()), 8) + "-" + Self.pad(n, 10))
        _ = try client.txn(TxnRequest(compare: [], success: [.put(key, try Self.encode(evaluation))]))
    }

    public func gateEvaluations(run: Int64, limit: Int) throws -> [GateEvaluationRecord] {
        let prefix = key("gates", Self.pad(run)) + "/"
        return try (client.range(.prefix(prefix, limit: limit, descending: true)).kvs ?? []).reversed()
            .map { try decode(GateEvaluationRecord.self, $0) }
    }

    // MARK: - Commands

    public func submitCommand(_ command: String, arguments: String, at: Instant) throws -> Int64 {
        try counted("command", fence: nil) { id in
            let record = CommandRecord(id: id, command: command, arguments: arguments, issuedAt: at, acknowledgedAt: nil,
                                       accepted: nil, outcome: nil)
            return [.put(commandKey(id), try Self.encode(record)), .put(pendingKey(id), "")]
        }.id
    }

    public func pendingCommands() throws -> [CommandRecord] {
        let pending = try all(from: key("pending") + "/", to: EtcdClient.prefixEnd(key("pending") + "/"), keysOnly: true)
        return try pending.compactMap { kv in
            guard let id = Int64(kv.keyText.split(separator: "/").last ?? "") else { return nil }
            return try command(id)
        }
    }

    /// Answers command `id` when nobody did (its pending mark is there); fenced when asked.
    /// Returns whether this call answered it.
    func answer(_ id: Int64, at: Instant, accepted: Bool, outcome: String, fence: Int64?) throws -> Bool {
        guard var record = try command(id) else { return false }
        record.acknowledgedAt = at
        record.accepted = accepted
        record.outcome = outcome
        let response = try client.txn(TxnRequest(
            compare: [.exists(pendingKey(id))] + fenceCompare(fence),
            success: [.put(commandKey(id), try Self.encode(record)), .delete(pendingKey(id))],
            failure: [.get(leaderKey)]))
        if response.ok { return true }
        if let fence, response.read(0).first?.createRevision != fence { throw fenced(fence, leader: response.read(0).first) }
        return false
    }

    public func acknowledgeCommand(_ id: Int64, at: Instant, accepted: Bool, outcome: String, fence: Int64?) throws {
        _ = try answer(id, at: at, accepted: accepted, outcome: outcome, fence: fence)
    }

    public func withdrawCommand(_ id: Int64, at: Instant, outcome: String) throws -> Bool {
        try answer(id, at: at, accepted: false, outcome: outcome, fence: nil)
    }

    public func command(_ id: Int64) throws -> CommandRecord? {
        try client.get(commandKey(id)).map { try decode(CommandRecord.self, $0) }
    }

    // MARK: - Samples

    func sampleValue(_ sample: LoadBalancerSample) throws -> String {
        var series: [String: ClusterCounters] = [:]
        for (key, counters) in sample.journaledSeries { series[key] = counters }
        return try Self.encode(series)
    }

    public func recordSample(run: Int64, _ sample: LoadBalancerSample) throws {
        try recordSamples(run: run, [sample])
    }

    public func recordSamples(run: Int64, _ samples: [LoadBalancerSample]) throws {
        // One key per instant: a later sample of the same millisecond replaces the earlier.
        var ops: [String: RequestOp] = [:]
        var order: [String] = []
        for sample in samples {
            let key = sampleKey(run, sample.at)
            if ops[key] == nil { order.append(key) }
            ops[key] = .put(key, try sampleValue(sample))
        }
        for start in stride(from: 0, to: order.count, by: Self.batch) {
            let chunk = order[start..<min(order.count, start + Self.batch)].map { ops[$0]! }
            _ = try client.txn(TxnRequest(compare: [], success: chunk))
        }
    }

    public func recordObservation(run: Int64, at: Instant, sample: LoadBalancerSample?, state: String?, fence: Int64?) throws {
        var ops: [RequestOp] = []
        if let sample { ops.append(.put(sampleKey(run, sample.at), try sampleValue(sample))) }
        if let state { ops.append(.put(stateKey(run), try Self.encode(StoredState(at: at.millisecondsSinceEpoch, json: state)))) }
        guard !ops.isEmpty else { return }
        let revision = try fencedWrite(fence: fence, state: state == nil ? nil : run, ops)
        if state != nil { locked { stateRevisions[run] = revision } }
    }

    public func samples(run: Int64, cluster: String, since: Instant) throws -> [(at: Instant, counters: ClusterCounters)] {
        let rows = try all(from: sampleKey(run, since), to: key("samples", Self.pad(run)) + "0")
        return try rows.compactMap { kv in
            guard let ms = Int64(kv.keyText.split(separator: "/").last ?? ""),
                  let counters = try decode([String: ClusterCounters].self, kv)[cluster] else { return nil }
            return (Instant(millisecondsSinceEpoch: ms), counters)
        }
    }

    @discardableResult
    public func pruneSamples(now: Instant, retention: SampleRetention) throws -> Int {
        let cutoff = now - retention.fullResolution
        let bucket = max(1, retention.bucket.milliseconds)
        var deletedRows = 0
        var revision: Int64 = 0
        let runs = try all(from: key("run") + "/", to: EtcdClient.prefixEnd(key("run") + "/"), keysOnly: true)
        for runKey in runs {
            guard let run = Int64(runKey.keyText.split(separator: "/").last ?? "") else { continue }
            let old = try all(from: key("samples", Self.pad(run)) + "/", to: sampleKey(run, cutoff))
            // The first sample of each bucket stays, per series: a sample whose every series was
            // seen already in its bucket goes.
            var seen = Set<String>()
            var doomed: [(key: String, rows: Int)] = []
            for kv in old {
                guard let ms = Int64(kv.keyText.split(separator: "/").last ?? "") else { continue }
                let series = try decode([String: ClusterCounters].self, kv).keys
                let fresh = series.filter { seen.insert("\($0)/\(ms / bucket)").inserted }
                if fresh.isEmpty { doomed.append((kv.keyText, series.count)) }
            }
            for start in stride(from: 0, to: doomed.count, by: Self.batch) {
                let chunk = doomed[start..<min(doomed.count, start + Self.batch)]
                revision = try client.txn(TxnRequest(compare: [], success: chunk.map { .delete($0.key) })).revision
                deletedRows += chunk.reduce(0) { $0 + $1.rows }
            }
        }
        try compactHistory(revision: revision)
        return deletedRows
    }

    /// Compacts etcd's history to the revision of the previous prune (a minute ago, or more),
    /// then remembers the current one. Current values are never touched; only the record of
    /// their former values goes, which nothing here reads.
    func compactHistory(revision: Int64) throws {
        let current = revision > 0 ? revision : (try client.range(RangeRequest(key: key("meta"))).header?.revision?.value ?? 0)
        let before = locked { () -> Int64? in
            let before = compactBefore
            compactBefore = current
            return before
        }
        guard let before, before > 0 else { return }
        do {
            try client.compact(revision: before)
        } catch let error as StoreError where error.code == .etcd && error.context.contains("compacted") {
            // Someone compacted further already.
        }
    }

    // MARK: - Lease

    /// Takes the leader key by force, without an etcd lease (the contract's shape for tests; a
    /// coordinator takes it with `EtcdLease`, which never takes a key another holds). Returns
    /// the key's new create revision: above every token before, so every holder before is fenced.
    public func takeLease(holder: String, at: Instant) throws -> Int64 {
        let value = try Self.encode(LeaderRecord(id: holder, host: ProcessInfo.processInfo.hostName, pid: getpid(),
                                                 since: at.millisecondsSinceEpoch, lease: 0))
        _ = try client.txn(TxnRequest(compare: [], success: [.delete(leaderKey)]))
        let response = try client.txn(TxnRequest(compare: [.created(leaderKey, at: 0)], success: [.put(leaderKey, value)]))
        guard response.ok else { throw StoreError(.lockHeld, "another holder took \(leaderKey) meanwhile") }
        return response.revision
    }

    public func leaseToken() throws -> Int64 {
        try client.get(leaderKey)?.createRevision ?? 0
    }

    /// The coordinator that holds the lease, when one does.
    public func leader() throws -> (record: LeaderRecord, token: Int64)? {
        guard let kv = try client.get(leaderKey) else { return nil }
        return (try decode(LeaderRecord.self, kv), kv.createRevision)
    }

    // MARK: - State

    public func saveState(run: Int64, at: Instant, json: String, fence: Int64?) throws {
        let revision = try fencedWrite(fence: fence, state: run,
                                       [.put(stateKey(run), try Self.encode(StoredState(at: at.millisecondsSinceEpoch, json: json)))])
        locked { stateRevisions[run] = revision }
    }

    public func loadState(run: Int64) throws -> (at: Instant, json: String)? {
        guard let kv = try client.get(stateKey(run)) else { return nil }
        let stored = try decode(StoredState.self, kv)
        locked { stateRevisions[run] = kv.modRevision }
        return (Instant(millisecondsSinceEpoch: stored.at), stored.json)
    }
}

/// `counted`'s `while` conditions failed with the counter unmoved: the write was refused for
/// its own reason (an intent already finished), not for a fence or a concurrent writer.
struct ConditionNoLongerHolds: Error {
    var keys: [String]
}

/// Who holds an etcd journal's lease: the value of its `leader` key.
public struct LeaderRecord: Codable, Sendable, Hashable {
    /// `host/pid/start`: unique per coordinator process.
    public var id: String
    public var host: String
    public var pid: Int32
    /// Milliseconds since the epoch, by the holder's clock (shown, never compared).
    public var since: Int64
    /// The etcd lease the key is bound to (0: none, taken by force).
    public var lease: Int64
}
