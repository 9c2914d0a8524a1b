import Foundation
import SwitchoverCore
import SwitchoverStore
#if canImport(Glibc)
import Glibc
#endif

/// Where a run's journal and its coordinator's lease live, from `--state`: the one place that
/// chooses them.
///
/// - A file path: the SQLite journal there and a `flock` lease on `<path>.lock` with its fencing
///   token in the journal (`FlockLease`).
/// - `etcd://HOST:PORT,.../PREFIX` (`etcds://` with TLS): the journal in etcd under PREFIX
///   (`EtcdJournal`) and a leader key bound to an etcd lease (`EtcdLease`), which a standby on
///   another machine takes over when it ends.
public struct StateLocation: Sendable, CustomStringConvertible {
    public enum Store: Sendable {
        case file(String)
        case etcd(EtcdLocation, EtcdOptions)
    }

    /// `--state` as given.
    public let path: String
    public let store: Store

    /// A file path (or an `etcd://` URL with default options, which must parse: tests).
    public init(_ argument: String) {
        // A malformed URL given here is a programming error; the command line uses `parsing:`.
        self = (try? StateLocation(parsing: argument, etcd: EtcdOptions())) ?? StateLocation(file: argument)
    }

    private init(file: String) {
        path = file
        store = .file(file)
    }

    /// `--state` and the etcd options; a malformed `etcd://` URL throws `.open` saying what is wrong.
    public init(parsing argument: String, etcd: EtcdOptions) throws {
        path = argument
        if EtcdLocation.isEtcd(argument) {
            store = .etcd(try EtcdLocation(parsing: argument), etcd)
        } else {
            store = .file(argument)
        }
    }

    public var description: String { path }

    public var isEtcd: Bool { if case .etcd = store { true } else { false } }

    /// The etcd journal, made (`create`) or only opened.
    private func etcdJournal(_ location: EtcdLocation, _ options: EtcdOptions, create: Bool) throws -> EtcdJournal {
        try EtcdJournal(client: try options.client(for: location), prefix: location.prefix, create: create)
    }

    /// The journal when one is there, for commands that read it or add a command to it; nil when
    /// nothing has run with this `--state` (nothing is created).
    public func existingJournal() throws -> (any JournalStore)? {
        switch store {
        case .file(let path):
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            return try SQLiteJournal(path: path)
        case .etcd(let location, let options):
            let client = try options.client(for: location)
            guard try EtcdJournal.exists(client: client, prefix: location.prefix) else { return nil }
            return try EtcdJournal(client: client, prefix: location.prefix, create: false)
        }
    }

    /// The journal, created when missing: for the commands that start runs.
    public func journal() throws -> any JournalStore {
        switch store {
        case .file(let path): try SQLiteJournal(path: path)
        case .etcd(let location, let options): try etcdJournal(location, options, create: true)
        }
    }

    /// The journal opened read-only (`report`): nothing is created or changed.
    public func readOnlyJournal() throws -> any JournalStore {
        switch store {
        case .file(let path): try SQLiteJournal(readOnlyPath: path)
        case .etcd(let location, let options): try etcdJournal(location, options, create: false)
        }
    }

    /// The journal as a reader may still see it when it cannot be opened for writing (a
    /// read-only filesystem, a full disk): read-only if SQLite can, else an immutable snapshot of
    /// its main file. `behind` says what the snapshot may miss. etcd has no such second way: a
    /// journal etcd cannot serve cannot be read either.
    public func emergencyJournal() throws -> (journal: any JournalStore, behind: String?) {
        guard case .file(let path) = store else { return (try readOnlyJournal(), nil) }
        if let reader = try? readOnlyJournal(), (try? reader.latestRun()) != nil {
            return (reader, nil)
        }
        let snapshot = try SQLiteJournal(snapshotPath: path)
        let behind = SQLiteJournal.writeAheadLogPending(path: path)
            ? "read without its write-ahead log, which the last coordinator left unmerged: the newest entries may be missing"
            : nil
        return (snapshot, behind)
    }

    /// Takes the journal's lease for this process (`StoreError.Code.lockHeld` naming the holder
    /// when a coordinator has it): a new fencing token, so every holder before is fenced.
    public func takeLease(journal: any JournalStore) throws -> any CoordinatorLease {
        switch store {
        case .file(let path):
            return try FlockLease(statePath: path, journal: journal, holder: "pid \(getpid())")
        case .etcd(_, let options):
            guard let journal = journal as? EtcdJournal else { throw StoreError(.open, "\(path): not an etcd journal") }
            return try EtcdLease.take(journal: journal, ttl: options.leaseTTL)
        }
    }

    /// Waits while another coordinator holds the lease, then takes it (`run --standby`). A file
    /// journal's lock is taken the same way, polled.
    public func standBy(journal: any JournalStore, waiting: @escaping @Sendable (String) -> Void) async throws -> any CoordinatorLease {
        switch store {
        case .file:
            var told = false
            while true {
                do {
                    return try takeLease(journal: journal)
                } catch let error as StoreError where error.code == .lockHeld {
                    if !told { waiting("standing by: \(error.context); taking over when it stops") }
                    told = true
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        case .etcd(_, let options):
            guard let journal = journal as? EtcdJournal else { throw StoreError(.open, "\(path): not an etcd journal") }
            return try await EtcdLease.standBy(journal: journal, ttl: options.leaseTTL, waiting: waiting)
        }
    }

    /// Takes the lock alone, without a fencing token: only for the emergency rollback when the
    /// journal cannot be written (a full disk), so that no coordinator starts meanwhile. An etcd
    /// journal has no lock apart from its lease: refused.
    public func takeLockWithoutToken() throws -> CoordinatorLock {
        guard case .file(let path) = store else {
            throw StoreError(.lock, "an etcd journal has no lock apart from its leader lease, which cannot be taken while etcd cannot write")
        }
        return try CoordinatorLock(statePath: path)
    }

    /// The running coordinator, when one holds the lease (for etcd: the leader key's holder).
    public var coordinator: LockHolder? {
        switch store {
        case .file(let path):
            guard CoordinatorLock.isHeld(statePath: path) else { return nil }
            return CoordinatorLock.holder(statePath: path) ?? LockHolder(pid: 0, startedAt: "unknown")
        case .etcd:
            guard let journal = try? existingJournal() as? EtcdJournal, let (record, token) = try? journal.leader() else { return nil }
            let since = Instant(millisecondsSinceEpoch: record.since).iso8601
            return LockHolder(pid: record.pid, startedAt: since, host: record.host, id: record.id, token: token)
        }
    }

    /// The latest run and its state, when the journal has one.
    public static func latestRun(in journal: any JournalStore) throws -> (RunRecord, CutoverState)? {
        guard let run = try journal.latestRun(), let state = try journal.loadCutoverState(run: run.id) else { return nil }
        return (run, state)
    }
}
