import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A raw TCP client connection to 127.0.0.1 that a test keeps open: a client that has not gone
/// away (a long upload, a keep-alive connection between requests). Closed by `close()` or deinit.
///
/// `@unchecked Sendable`: the descriptor is only changed under `lock`.
public final class HeldConnection: @unchecked Sendable {
    private let lock = NSLock()
    private var fd: Int32

    /// Connects and sends `request` as is (nothing is added: an incomplete request stays
    /// incomplete, so the load balancer keeps its stream to the server open).
    public init(port: Int, send request: String) throws {
        let fd = try Loopback.connectBlocking(port: port, receiveTimeoutSeconds: 2)
        self.fd = fd
        try send(request)
    }

    public func send(_ text: String) throws {
        try lock.withLock {
            let bytes = Array(text.utf8)
            guard fd >= 0, Glibc.send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else {
                throw TestKitError("send: errno \(errno)")
            }
        }
    }

    /// What has arrived within the receive timeout (2 s), up to 64 KB; empty when nothing did.
    /// `recv` blocks, so it is made on a thread of its own.
    public func receive() async -> String {
        await OwnThread.run("receive") { self.receiveBlocking() }
    }

    private func receiveBlocking() -> String {
        lock.withLock {
            guard fd >= 0 else { return "" }
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let n = recv(fd, &buffer, buffer.count, 0)
            return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
        }
    }

    public func close() {
        lock.withLock {
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }
    }

    deinit { close() }
}
