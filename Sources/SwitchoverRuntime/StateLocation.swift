import Foundation
import SwitchoverCore
import SwitchoverStore
#if canImport(Glibc)
import Glibc
#endif

/// Where a run's journal and its coordinator's lease live, from `--state`: the one place that
/// chooses them, so another kind of store (etcd) is added here alone.
///
/// Today `--state` is a file path: the SQLite journal there and a `flock` lease on `<path>.lock`
/// with its fencing token in the journal (`FlockLease`).
public struct StateLocation: Sendable, CustomStringConvertible {
    /// The journal file.
    public let path: String

    public init(_ argument: String) {
        path = argument
    }

    public var description: String { path }

    /// The journal when one is there, for commands that read it or add a command to it; nil when
    /// nothing has run with this `--state` (nothing is created).
    public func existingJournal() throws -> (any JournalStore)? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try SQLiteJournal(path: path)
    }

    /// The journal, created when missing: for the commands that start runs.
    public func journal() throws -> any JournalStore {
        try SQLiteJournal(path: path)
    }

    /// The journal opened read-only (`report`): nothing is created or changed.
    public func readOnlyJournal() throws -> any JournalStore {
        try SQLiteJournal(readOnlyPath: path)
    }

    /// The journal as a reader may still see it when it cannot be opened for writing (a
    /// read-only filesystem, a full disk): read-only if SQLite can, else an immutable snapshot of
    /// its main file. `behind` says what the snapshot may miss.
    public func emergencyJournal() throws -> (journal: any JournalStore, behind: String?) {
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
        try FlockLease(statePath: path, journal: journal, holder: "pid \(getpid())")
    }

    /// Takes the lock alone, without a fencing token: only for the emergency rollback when the
    /// journal cannot be written (a full disk), so that no coordinator starts meanwhile.
    public func takeLockWithoutToken() throws -> CoordinatorLock {
        try CoordinatorLock(statePath: path)
    }

    /// The running coordinator, when one holds the lease.
    public var coordinator: LockHolder? {
        guard CoordinatorLock.isHeld(statePath: path) else { return nil }
        return CoordinatorLock.holder(statePath: path) ?? LockHolder(pid: 0, startedAt: "unknown")
    }

    /// The latest run and its state, when the journal has one.
    public static func latestRun(in journal: any JournalStore) throws -> (RunRecord, CutoverState)? {
        guard let run = try journal.latestRun(), let state = try journal.loadCutoverState(run: run.id) else { return nil }
        return (run, state)
    }
}
