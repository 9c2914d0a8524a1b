import Foundation
import SwitchoverCore

/// The right to move weights for one journal, held by one coordinator at a time, with a fencing
/// token: every intent is journaled only while the token is still the journal's
/// (`JournalStore.beginIntent(run:at:action:detail:state:fence:)`), and the load balancer is
/// asked only after that write succeeded. A coordinator whose lease was taken over therefore
/// journals no further intent and moves no weight, however long it takes to notice.
///
/// Mutual exclusion alone is not enough: a lock file deleted and created again lets a second
/// holder in while the first still runs, and a distributed lease can expire under a paused
/// process. The token is what makes the deposed one harmless.
public protocol CoordinatorLease: AnyObject, Sendable {
    /// This holder's fencing token.
    var token: Int64 { get }
    /// When this holder took the lease: commands journaled after it are addressed to it.
    var acquiredAt: Date { get }
    /// Checks that the lease is still this holder's; throws `StoreError.Code.fenced` when another
    /// coordinator took it. The coordinator calls it every loop turn: the lost-lease notice.
    func renew() throws
    /// Gives the lease up (also done when the holder is deallocated or dies).
    func release()
}

/// The embedded lease: an exclusive `flock` on `<state>.lock` (one holder per journal file, freed
/// by the kernel however the holder dies) plus a fencing token kept in the journal itself, taken
/// when the lock is (one above the last holder's).
///
/// `@unchecked Sendable`: immutable after `init`; `CoordinatorLock` guards its descriptor, the
/// journal is `Sendable`.
public final class FlockLease: CoordinatorLease, @unchecked Sendable {
    public let token: Int64
    let lock: CoordinatorLock
    let journal: any JournalStore

    /// Takes the lock at once (`StoreError.Code.lockHeld` naming the holder when another has
    /// it), then a new fencing token from `journal`. When the token cannot be written (a full
    /// disk) the lock is released again and the journal's error thrown.
    public init(statePath: String, journal: any JournalStore, holder: String) throws {
        let lock = try CoordinatorLock(statePath: statePath)
        do {
            token = try journal.takeLease(holder: holder, at: Instant(lock.acquiredAt))
        } catch {
            lock.release()
            throw error
        }
        self.lock = lock
        self.journal = journal
    }

    public var acquiredAt: Date { lock.acquiredAt }

    public func renew() throws {
        let current = try journal.leaseToken()
        guard current == token else {
            throw StoreError(.fenced, "the journal's lease was taken over (token \(current), this coordinator's \(token))")
        }
    }

    public func release() { lock.release() }
}
