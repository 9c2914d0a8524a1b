import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A client for one-command-per-connection line protocols over a UNIX socket or TCP, made for
/// HAProxy's runtime API: connect, send one line, read until the peer closes.
///
/// HAProxy's admin socket in non-interactive mode answers one command line (several commands
/// may share it, joined by `;`) and closes the connection; so does this client's default. Set
/// `terminator` for a peer that keeps the connection open and ends its answer with a known
/// string instead.
///
/// Addresses: `/path/to/admin.sock`, `unix:/path`, `unix:///path`, `tcp://host:port`, and
/// HAProxy's own `ipv4@host:port` / `ipv6@[host]:port` spellings.
///
/// The blocking socket calls (connect, poll, recv) run on Dispatch threads through
/// `BlockingExecutor`, never on the cooperative pool.
public struct LineClient: Sendable {
    public let address: String
    /// Time allowed to connect.
    public let connectTimeout: Duration
    /// Time allowed, after connecting, to send the command and receive the whole answer.
    public let readTimeout: Duration
    /// When set, the answer is complete once the received text ends with it (it stays in the
    /// returned text); when `nil`, the answer ends when the peer closes the connection.
    public let terminator: String?
    /// A longer answer fails with `.responseTooLarge`.
    public let maxResponseBytes: Int

    public init(address: String, connectTimeout: Duration, readTimeout: Duration, terminator: String? = nil,
                maxResponseBytes: Int = 16 << 20) {
        self.address = address
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        self.terminator = terminator
        self.maxResponseBytes = maxResponseBytes
    }

    /// Sends `command` (a newline is appended) and returns everything the peer answered.
    public func send(_ command: String) async throws -> String {
        try await BlockingExecutor.run { [self] in try sendBlocking(command) }
    }

    /// The same as `send`, blocking the calling thread: for code that is not async. Never call
    /// it from a task on the cooperative pool.
    public func sendBlocking(_ command: String) throws -> String {
        guard !command.contains(where: \.isNewline) else {
            throw LineClientError(code: .invalidCommand, address: address,
                                  message: "the command contains a line break; join several commands with ';'")
        }
        let endpoint = try Endpoint(parsing: address)
        let connectDeadline = ContinuousClock.now + connectTimeout
        let socket = try connect(to: endpoint, deadline: connectDeadline)
        let deadline = ContinuousClock.now + readTimeout
        try socket.sendAll(Array((command + "\n").utf8), deadline: deadline, address: address)
        let bytes = try socket.receive(until: terminator.map { Array($0.utf8) }, deadline: deadline,
                                       maxBytes: maxResponseBytes, address: address)
        return String(decoding: bytes, as: UTF8.self)
    }

    private func connect(to endpoint: Endpoint, deadline: ContinuousClock.Instant) throws -> SocketDescriptor {
        switch endpoint {
        case .unix(let path):
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let pathBytes = Array(path.utf8)
            let capacity = MemoryLayout.size(ofValue: addr.sun_path)
            guard pathBytes.count < capacity else {
                throw LineClientError(code: .badAddress, address: address,
                                      message: "socket path is \(pathBytes.count) bytes, the limit is \(capacity - 1)")
            }
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in
                raw.copyBytes(from: pathBytes)
                raw[pathBytes.count] = 0
            }
            let socket = try SocketDescriptor(family: AF_UNIX, address: address)
            try withUnsafePointer(to: &addr) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try socket.connect($0, length: socklen_t(MemoryLayout<sockaddr_un>.size), deadline: deadline,
                                       address: address)
                }
            }
            return socket

        case .tcp(let host, let port):
            var hints = addrinfo()
            hints.ai_socktype = socketStream
            hints.ai_family = AF_UNSPEC
            var list: UnsafeMutablePointer<addrinfo>?
            let rc = getaddrinfo(host, String(port), &hints, &list)
            guard rc == 0, let first = list else {
                throw LineClientError(code: .couldNotResolveHost, address: address,
                                      message: "cannot resolve '\(host)': \(String(cString: gai_strerror(rc)))")
            }
            defer { freeaddrinfo(list) }
            var lastError: LineClientError?
            var current: UnsafeMutablePointer<addrinfo>? = first
            while let info = current {
                current = info.pointee.ai_next
                do {
                    let socket = try SocketDescriptor(family: info.pointee.ai_family, address: address)
                    try socket.connect(info.pointee.ai_addr, length: info.pointee.ai_addrlen, deadline: deadline,
                                       address: address)
                    return socket
                } catch let error as LineClientError {
                    lastError = error
                    if error.code == .connectTimeout { break }
                }
            }
            throw lastError ?? LineClientError(code: .couldNotResolveHost, address: address, message: "no address for '\(host)'")
        }
    }
}

/// A failed exchange with a line-protocol peer: which address, what went wrong, and the OS
/// error when there was one (ECONNREFUSED, ENOENT for a missing socket file, ...).
public struct LineClientError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this was; compare with the static constants.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case badAddress, invalidCommand, couldNotResolveHost, noSuchSocket, connectionRefused, permissionDenied
            case connectTimeout, connectFailed, sendFailed, readTimeout, receiveFailed, responseTooLarge
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The address is not `/path`, `unix:/path`, `tcp://host:port` or `ipv4@host:port`.
        public static let badAddress = Code(.badAddress)
        /// The command holds a line break (it would be several commands).
        public static let invalidCommand = Code(.invalidCommand)
        public static let couldNotResolveHost = Code(.couldNotResolveHost)
        /// No socket file at the path (ENOENT): the server is not running or uses another path.
        public static let noSuchSocket = Code(.noSuchSocket)
        /// ECONNREFUSED: nothing listens on the TCP port, or a stale socket file.
        public static let connectionRefused = Code(.connectionRefused)
        /// EACCES/EPERM on the socket file.
        public static let permissionDenied = Code(.permissionDenied)
        public static let connectTimeout = Code(.connectTimeout)
        public static let connectFailed = Code(.connectFailed)
        public static let sendFailed = Code(.sendFailed)
        /// The whole answer did not arrive within the read timeout.
        public static let readTimeout = Code(.readTimeout)
        public static let receiveFailed = Code(.receiveFailed)
        public static let responseTooLarge = Code(.responseTooLarge)

        public var description: String {
            switch base {
            case .badAddress: "bad address"
            case .invalidCommand: "invalid command"
            case .couldNotResolveHost: "could not resolve host"
            case .noSuchSocket: "no such socket"
            case .connectionRefused: "connection refused"
            case .permissionDenied: "permission denied"
            case .connectTimeout: "connect timed out"
            case .connectFailed: "connect failed"
            case .sendFailed: "send failed"
            case .readTimeout: "read timed out"
            case .receiveFailed: "receive failed"
            case .responseTooLarge: "response too large"
            }
        }
    }

    public let code: Code
    public let address: String
    /// The OS errno behind the failure, if any.
    public let osErrno: Int32?
    public let message: String

    public init(code: Code, address: String, osErrno: Int32? = nil, message: String) {
        self.code = code
        self.address = address
        self.osErrno = osErrno
        self.message = message
    }

    public var description: String { "\(address): \(code): \(message)" }

    /// An error from `errno` after a failed call named `call`.
    static func fromErrno(_ err: Int32, call: String, address: String, fallback: Code) -> LineClientError {
        let code: Code = switch err {
        case ENOENT: .noSuchSocket
        case ECONNREFUSED: .connectionRefused
        case EACCES, EPERM: .permissionDenied
        case ETIMEDOUT: .connectTimeout
        default: fallback
        }
        return LineClientError(code: code, address: address, osErrno: err,
                               message: "\(call): \(errnoName(err)) (\(String(cString: strerror(err))))")
    }

    private static func errnoName(_ err: Int32) -> String {
        switch err {
        case ENOENT: "ENOENT"
        case ECONNREFUSED: "ECONNREFUSED"
        case EACCES: "EACCES"
        case EPERM: "EPERM"
        case ETIMEDOUT: "ETIMEDOUT"
        case ECONNRESET: "ECONNRESET"
        case EPIPE: "EPIPE"
        case ENOTSOCK: "ENOTSOCK"
        case EHOSTUNREACH: "EHOSTUNREACH"
        case ENETUNREACH: "ENETUNREACH"
        case EADDRNOTAVAIL: "EADDRNOTAVAIL"
        default: "errno \(err)"
        }
    }
}

// MARK: - Internals

#if os(Linux)
private let socketStream = Int32(SOCK_STREAM.rawValue)
private let sendFlags = Int32(MSG_NOSIGNAL)
#else
private let socketStream = SOCK_STREAM
private let sendFlags: Int32 = 0
#endif

enum Endpoint: Equatable {
    case unix(String)
    case tcp(host: String, port: Int)

    init(parsing address: String) throws {
        func bad(_ why: String) -> LineClientError {
            LineClientError(code: .badAddress, address: address,
                            message: "\(why); expected /path, unix:/path, tcp://host:port or ipv4@host:port")
        }
        if address.hasPrefix("/") { self = .unix(address); return }
        for prefix in ["unix://", "unix:"] where address.hasPrefix(prefix) {
            let path = String(address.dropFirst(prefix.count))
            guard !path.isEmpty else { throw bad("empty socket path") }
            self = .unix(path)
            return
        }
        var rest: Substring
        if address.hasPrefix("tcp://") {
            rest = address.dropFirst("tcp://".count)
        } else if address.hasPrefix("ipv4@") || address.hasPrefix("ipv6@") {
            rest = address.dropFirst(5)
        } else {
            throw bad("unknown address form")
        }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]),
              (1...65535).contains(port) else { throw bad("missing or invalid port") }
        var host = rest[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty else { throw bad("missing host") }
        self = .tcp(host: String(host), port: port)
    }
}

/// Owns one socket file descriptor and closes it in `deinit`. Non-blocking: every wait is a
/// `poll` bounded by a deadline.
final class SocketDescriptor {
    let fd: Int32

    init(family: Int32, address: String) throws {
        let fd = socket(family, socketStream, 0)
        guard fd >= 0 else { throw LineClientError.fromErrno(errno, call: "socket", address: address, fallback: .connectFailed) }
        self.fd = fd
        #if canImport(Darwin)
        var on: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, socklen_t(MemoryLayout<Int32>.size))
        #endif
        let flags = fcntl(fd, F_GETFL, 0)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }

    deinit { close(fd) }

    func connect(_ addr: UnsafePointer<sockaddr>, length: socklen_t, deadline: ContinuousClock.Instant,
                 address: String) throws {
        if systemConnect(fd, addr, length) == 0 { return }
        let err = errno
        guard err == EINPROGRESS || err == EAGAIN || err == EINTR else {
            throw LineClientError.fromErrno(err, call: "connect", address: address, fallback: .connectFailed)
        }
        guard try wait(for: Int16(POLLOUT), deadline: deadline, address: address) else {
            throw LineClientError(code: .connectTimeout, address: address, message: "no connection within the connect timeout")
        }
        var soError: Int32 = 0
        var soLength = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &soLength)
        if soError != 0 {
            throw LineClientError.fromErrno(soError, call: "connect", address: address, fallback: .connectFailed)
        }
    }

    func sendAll(_ bytes: [UInt8], deadline: ContinuousClock.Instant, address: String) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { systemSend(fd, $0.baseAddress, $0.count, sendFlags) }
            if sent >= 0 { offset += sent; continue }
            let err = errno
            if err == EINTR { continue }
            guard err == EAGAIN || err == EWOULDBLOCK else {
                throw LineClientError.fromErrno(err, call: "send", address: address, fallback: .sendFailed)
            }
            guard try wait(for: Int16(POLLOUT), deadline: deadline, address: address) else {
                throw LineClientError(code: .readTimeout, address: address, message: "could not send within the read timeout")
            }
        }
    }

    func receive(until terminator: [UInt8]?, deadline: ContinuousClock.Instant, maxBytes: Int,
                 address: String) throws -> [UInt8] {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            if let terminator, !terminator.isEmpty, received.count >= terminator.count,
               Array(received.suffix(terminator.count)) == terminator { return received }
            guard try wait(for: Int16(POLLIN), deadline: deadline, address: address) else {
                throw LineClientError(code: .readTimeout, address: address,
                                      message: "no complete answer within the read timeout (\(received.count) bytes received)")
            }
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 {
                if terminator == nil { return received }
                throw LineClientError(code: .receiveFailed, address: address,
                                      message: "the peer closed the connection before the terminator (\(received.count) bytes received)")
            }
            if count < 0 {
                let err = errno
                if err == EINTR || err == EAGAIN || err == EWOULDBLOCK { continue }
                throw LineClientError.fromErrno(err, call: "recv", address: address, fallback: .receiveFailed)
            }
            received.append(contentsOf: chunk[..<count])
            if received.count > maxBytes {
                throw LineClientError(code: .responseTooLarge, address: address, message: "answer exceeds \(maxBytes) bytes")
            }
        }
    }

    /// Polls for `events` until `deadline`; false on timeout.
    private func wait(for events: Int16, deadline: ContinuousClock.Instant, address: String) throws -> Bool {
        while true {
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero { return false }
            var pfd = pollfd(fd: fd, events: events, revents: 0)
            let rc = poll(&pfd, 1, Int32(clamping: remaining.curlMilliseconds))
            if rc > 0 { return true }  // ready, or an error/hang-up the next call reports
            if rc == 0 { continue }    // re-check the deadline
            let err = errno
            if err == EINTR { continue }
            throw LineClientError.fromErrno(err, call: "poll", address: address, fallback: .receiveFailed)
        }
    }
}

// The C calls that SocketDescriptor's methods of the same name shadow (a module-qualified
// `Glibc.connect` would not build on Darwin).
private func systemConnect(_ fd: Int32, _ addr: UnsafePointer<sockaddr>, _ len: socklen_t) -> Int32 {
    connect(fd, addr, len)
}
private func systemSend(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int, _ flags: Int32) -> Int {
    send(fd, buffer, count, flags)
}
