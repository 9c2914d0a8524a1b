import Foundation
import SwitchoverCore

/// The etcd journal's lease: the journal's `leader` key, created only when absent and bound to an
/// etcd lease of `ttl` that a thread of its own keeps alive. The key's create revision is the
/// fencing token every write of the coordinator compares (`EtcdJournal`), so a coordinator whose
/// key is gone, or was made again by another, journals nothing and so moves nothing.
///
/// Time: leadership never compares clocks across machines. etcd ends the lease `ttl` after the
/// last renewal it received, by its own clock; this process renews every `ttl / 3` and, by its
/// own monotonic clock, counts itself unsure once `ttl` passed since the last renewal etcd
/// confirmed (`renew()` throws `.unavailable`: the coordinator moves nothing while unsure). The
/// deposed case needs no clock at all: the fence compare fails on etcd.
///
/// - `renew()` never waits on the network: the keep-alive thread does the asking.
/// - When etcd says the lease is gone (TTL 0) or the key is another's, `renew()` throws
///   `.fenced` from then on.
/// - etcd without quorum cannot renew anything; when it has a leader again, that leader gives
///   every lease its whole TTL back, so a coordinator that waited through the outage finds its
///   lease alive and goes on, while one whose lease did end finds out at its next renewal.
///
/// `@unchecked Sendable`: the mutable state is guarded by `lock`; the rest is immutable.
public final class EtcdLease: CoordinatorLease, @unchecked Sendable {
    public let token: Int64
    /// Seconds a leader key may outlive the TTL: etcd checks for expired leases every 500 ms,
    /// a standby looks every 100 ms; the rest is margin.
    static let expiryGrace = 2.0
    /// Since when commands are addressed to this holder: the take minus the TTL and
    /// `expiryGrace`. A command journaled that long before a takeover was journaled while the
    /// previous leader's key still stood (it outlives its holder by at most the TTL, plus etcd's
    /// half-second expiry check and the standby's poll), so it was asked of a coordinator, and an
    /// emergency `rollback` typed during a failover is carried out by the one that takes over
    /// rather than refused as issued while none ran. (Commands are judged by the submitting
    /// machine's clock against this one's: the one place clocks meet, and only for that.)
    public let acquiredAt: Date
    /// The etcd lease the key is bound to.
    public let leaseID: Int64
    public let ttl: Duration
    public let record: LeaderRecord
    let client: EtcdClient
    let leaderKey: String
    private let lock = NSLock()
    private var lastConfirmed: ContinuousClock.Instant
    private var lost: String?
    private var lastError: String?
    private var released = false

    /// Takes the lease when nobody holds it, else throws `.lockHeld` naming the holder.
    public static func take(journal: EtcdJournal, ttl: Duration) throws -> EtcdLease {
        let client = journal.client
        let seconds = max(1, (ttl.components.seconds) + (ttl.components.attoseconds > 0 ? 1 : 0))
        let granted = try client.grant(ttl: seconds)
        let now = Date()
        let host = ProcessInfo.processInfo.hostName
        let record = LeaderRecord(id: "\(host)/\(getpid())/\(Int64(now.timeIntervalSince1970 * 1000))", host: host, pid: getpid(),
                                  since: Int64(now.timeIntervalSince1970 * 1000), lease: granted.id)
        let response: TxnResponse
        do {
            response = try client.txn(TxnRequest(compare: [.created(journal.leaderKey, at: 0)],
                                                 success: [.put(journal.leaderKey, try EtcdJournal.encode(record), lease: granted.id)],
                                                 failure: [.get(journal.leaderKey)]))
        } catch {
            try? client.revoke(granted.id)
            throw error
        }
        guard response.ok else {
            try? client.revoke(granted.id)
            let holder = response.read(0).first
            let leader = holder.flatMap { try? JSONDecoder().decode(LeaderRecord.self, from: $0.value?.data ?? Data()) }
            throw StoreError(.lockHeld, Self.describe(leader, token: holder?.createRevision ?? 0, key: journal.leaderKey))
        }
        guard response.revision > 0 else {
            try? client.revoke(granted.id)
            throw StoreError(.etcd, "etcd answered the lease's transaction without a revision: no fencing token can be taken from it")
        }
        // Renewals get their own client whose requests give up after a quarter of the TTL: a
        // member that hangs (catching up after an outage) must not hold a renewal past the
        // lease's end while another member would answer.
        let quarter = Duration.seconds(granted.ttl) / 4
        let renewing = client.with(timeouts: .init(connect: min(.milliseconds(500), quarter), request: quarter))
        return EtcdLease(token: response.revision, record: record, leaseID: granted.id, ttl: .seconds(granted.ttl),
                         client: renewing, leaderKey: journal.leaderKey)
    }

    /// Waits while another coordinator holds the lease, then takes it (`run --standby`).
    /// `waiting` is told who leads, once per leader. Cancellable (a SIGTERM while standing by).
    public static func standBy(journal: EtcdJournal, ttl: Duration, poll: Duration = .milliseconds(100),
                               waiting: @Sendable (String) -> Void) async throws -> EtcdLease {
        var told: Int64?
        var unavailableTold = false
        while true {
            try Task.checkCancellation()
            do {
                // A look first (one read), and a take (a grant and a transaction) only when the key is gone.
                if let holder = try journal.leader() {
                    if told != holder.token {
                        told = holder.token
                        waiting("standing by: " + describe(holder.record, token: holder.token, key: journal.leaderKey)
                                + "; taking over when its lease ends")
                    }
                    unavailableTold = false
                    try await Task.sleep(for: poll)
                    continue
                }
                return try take(journal: journal, ttl: ttl)
            } catch let error as StoreError where error.code == .lockHeld {
                let token = (try? journal.leaseToken()) ?? 0
                if told != token {
                    told = token
                    waiting("standing by: \(error.context); taking over when its lease ends")
                }
                unavailableTold = false
            } catch let error as StoreError where error.code == .unavailable {
                if !unavailableTold {
                    unavailableTold = true
                    waiting("standing by: \(error.context); asking again")
                }
            }
            try await Task.sleep(for: poll)
        }
    }

    static func describe(_ leader: LeaderRecord?, token: Int64, key: String) -> String {
        guard let leader else { return "another coordinator holds \(key) (lease token \(token))" }
        let since = Date(timeIntervalSince1970: Double(leader.since) / 1000)
        return "coordinator pid \(leader.pid) on \(leader.host) leads since \(Instant(since).iso8601) (lease token \(token))"
    }

    init(token: Int64, record: LeaderRecord, leaseID: Int64, ttl: Duration, client: EtcdClient, leaderKey: String) {
        self.token = token
        self.record = record
        self.acquiredAt = Date(timeIntervalSince1970: Double(record.since) / 1000
                               - Double(ttl.components.seconds) - Self.expiryGrace)
        self.leaseID = leaseID
        self.ttl = ttl
        self.client = client
        self.leaderKey = leaderKey
        self.lastConfirmed = .now
        let thread = Thread { [weak self] in
            while let lease = self, lease.keepAliveOnce() {
                let pause = lease.lock.withLock { lease.lastError == nil ? lease.ttl / 3 : .milliseconds(200) }
                Thread.sleep(forTimeInterval: Double(pause.components.seconds) + Double(pause.components.attoseconds) / 1e18)
            }
        }
        thread.name = "etcd-lease-keepalive"
        thread.start()
    }

    /// One renewal and one look at the key; false once released or lost (the thread ends).
    func keepAliveOnce() -> Bool {
        if lock.withLock({ released || lost != nil }) { return false }
        // The renewal counts from when it was sent: etcd's TTL runs from its arrival, never before.
        let sent = ContinuousClock.now
        do {
            let left = try client.keepAlive(leaseID)
            if left <= 0 {
                lock.withLock { lost = "its etcd lease \(leaseID) expired: etcd heard no renewal from this coordinator within \(ttl)" }
                return false
            }
            let key = try client.get(leaderKey)
            if key?.createRevision != token {
                let now = key?.createRevision ?? 0
                lock.withLock { lost = now == 0 ? "the leader key is gone" : "another coordinator took the lease (token \(now), this one's \(token))" }
                return false
            }
            lock.withLock {
                lastConfirmed = sent
                lastError = nil
            }
        } catch let error as StoreError where error.code == .etcd {
            // etcd refuses the renewal for good (permission denied, a certificate no longer
            // accepted): waiting will not bring the lease back.
            lock.withLock { lost = "etcd refused to renew the lease: \(error.context)" }
            return false
        } catch {
            lock.withLock { lastError = (error as? StoreError)?.context ?? "\(error)" }
        }
        return true
    }

    /// Throws `.fenced` once the lease is known lost, `.unavailable` while it could not be renewed
    /// for `ttl` (etcd unreachable or without quorum): either way, move nothing.
    public func renew() throws {
        try lock.withLock {
            if let lost { throw StoreError(.fenced, "lost leadership: \(lost)") }
            let since = ContinuousClock.now - lastConfirmed
            if since > ttl {
                throw StoreError(.unavailable, "leadership unsure: the lease was last renewed \(Self.seconds(since)) ago (TTL \(Self.seconds(ttl)))"
                                    + (lastError.map { "; \($0)" } ?? ""))
            }
        }
    }

    static func seconds(_ d: Duration) -> String {
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        return String(format: "%.1fs", Double(ms) / 1000)
    }

    /// Ends the etcd lease, which deletes the key: a standby takes over at once, not after `ttl`.
    public func release() {
        let first = lock.withLock { () -> Bool in
            defer { released = true }
            return !released
        }
        guard first else { return }
        try? client.revoke(leaseID)
    }

    deinit { release() }
}
