import Foundation
import SwitchoverCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Who holds a journal's coordinator lock, as written in the lock file.
public struct LockHolder: Sendable, Hashable, CustomStringConvertible {
    public var pid: Int32
    /// ISO 8601, as written by the holder.
    public var startedAt: String
    /// For an etcd journal's leader: its host and unique id (`host/pid/start`); nil for a lock file.
    public var host: String?
    public var id: String?
    /// The etcd leader key's create revision: the fencing token (nil for a lock file).
    public var token: Int64?
    public var description: String {
        "PID \(pid)" + (host.map { " on \($0)" } ?? "") + ", started \(startedAt)" + (token.map { " (lease token \($0))" } ?? "")
    }
    public init(pid: Int32, startedAt: String, host: String? = nil, id: String? = nil, token: Int64? = nil) {
        self.pid = pid
        self.startedAt = startedAt
        self.host = host
        self.id = id
        self.token = token
    }
}

/// One coordinator per journal: an exclusive `flock` on `<state>.lock`.
///
/// `flock` rather than a PID file because the kernel releases it when the holder dies, however
/// it dies (SIGKILL included), so a crashed coordinator never leaves a stale lock behind. The
/// holder writes its PID and start time into the file so the refusal can say who holds it.
/// A `flock` belongs to an open file description: a second `open` of the file in the same
/// process conflicts too, so two coordinators in one process are refused as well.
///
/// Owns the file descriptor and closes it (releasing the lock) in `deinit` or `release()`.
/// `@unchecked Sendable`: `fd` is only changed under `mutex`.
public final class CoordinatorLock: @unchecked Sendable {
    public let path: String
    /// When this process took the lock: commands journaled after it are addressed to this holder.
    public let acquiredAt: Date
    private var fd: Int32
    private let mutex = NSLock()

    /// The lock file that guards the journal at `statePath`.
    public static func lockPath(forState statePath: String) -> String { statePath + ".lock" }

    /// Takes the lock at once or throws `StoreError.Code.lockHeld` naming the holder.
    public init(statePath: String, pid: Int32 = getpid(), startedAt: Date = Date()) throws {
        path = Self.lockPath(forState: statePath)
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        // O_CLOEXEC: a child process (a driver's helper, a test's server) must not inherit the
        // lock and keep it alive after the coordinator dies.
        var descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        var writable = true
        if descriptor < 0, errno == EROFS || errno == EACCES {
            // A read-only filesystem: a lock file already there can still be locked (flock needs
            // no write access); the holder is then not written. The emergency rollback needs this.
            descriptor = open(path, O_RDONLY | O_CLOEXEC)
            writable = false
        }
        guard descriptor >= 0 else {
            throw StoreError(.lock, "\(path): cannot open: \(String(cString: strerror(errno)))")
        }
        if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            close(descriptor)
            if code == EWOULDBLOCK {
                let holder = Self.holder(statePath: statePath)
                throw StoreError(.lockHeld, "\(statePath) is in use by another coordinator: "
                                 + (holder.map { "\($0)" } ?? "holder unknown (it has not written its PID yet)"))
            }
            throw StoreError(.lock, "\(path): flock: \(String(cString: strerror(code)))")
        }
        let taken = Date()
        // The holder is for messages only; the flock alone is the lock. On a full disk the
        // write may fail, and the lock must still be had: the emergency rollback needs it most
        // when the disk is full. The holder then reads as unknown.
        let text = "pid=\(pid)\nstarted=\(UTCTimestamp.string(startedAt))\n"
        _ = writable && text.withCString { pointer -> Bool in
            let length = strlen(pointer)
            guard pwrite(descriptor, pointer, length, 0) == length else {
                _ = ftruncate(descriptor, 0)
                return false
            }
            return ftruncate(descriptor, off_t(length)) == 0 && fsync(descriptor) == 0
        }
        fd = descriptor
        acquiredAt = taken
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Releases the lock now (also done when the lock is deallocated or the process dies). The
    /// file stays, with the last holder's PID in it; only the lock says whether it is held.
    public func release() {
        mutex.lock()
        defer { mutex.unlock() }
        if fd >= 0 {
            close(fd)
            fd = -1
        }
    }

    /// The holder written in the lock file, whether or not it still holds it (see `isHeld`).
    public static func holder(statePath: String) -> LockHolder? {
        guard let text = try? String(contentsOfFile: lockPath(forState: statePath), encoding: .utf8) else { return nil }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        guard let pid = fields["pid"].flatMap({ Int32($0) }) else { return nil }
        return LockHolder(pid: pid, startedAt: fields["started"] ?? "unknown")
    }

    /// True when some process holds the lock now (tested by trying it; `status` uses this to
    /// say whether a coordinator is running).
    public static func isHeld(statePath: String) -> Bool {
        let descriptor = open(lockPath(forState: statePath), O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        if flock(descriptor, LOCK_SH | LOCK_NB) == 0 {
            flock(descriptor, LOCK_UN)
            return false
        }
        return errno == EWOULDBLOCK
    }
}
