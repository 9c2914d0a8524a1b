import Foundation

/// A real `openssl s_server -www` on 127.0.0.1 and a free port: a TLS server whose certificate,
/// chain and client-certificate policy the test chooses. `-www` answers `GET /` with
/// `HTTP/1.0 200 ok` and a status page.
public final class OpenSSLServer: Sendable {
    public let port: Int
    public let process: ManagedProcess

    /// `https://127.0.0.1:PORT/`
    public var url: String { "https://127.0.0.1:\(port)/" }

    private init(port: Int, process: ManagedProcess) {
        self.port = port
        self.process = process
    }

    /// - Parameters:
    ///   - certificate: the server's leaf; `chain` adds intermediates sent after it.
    ///   - clientCA: when set, clients must present a certificate that verifies against it
    ///     (`-Verify 1`): mutual TLS.
    ///   - extraArguments: more `s_server` options (`-tls1_2`, ...).
    public static func start(name: String, certificate: TestCertificate, chain: URL? = nil, clientCA: URL? = nil,
                             extraArguments: [String] = [], directory: URL, timeout: TimeInterval = 15) async throws -> OpenSSLServer {
        let openssl = try Tools.require("openssl")
        let port = try Loopback.freePort()
        var arguments = ["s_server", "-accept", "127.0.0.1:\(port)", "-www", "-quiet",
                         "-cert", certificate.certificateFile.path, "-key", certificate.keyFile.path]
        if let chain { arguments += ["-cert_chain", chain.path] }
        if let clientCA { arguments += ["-Verify", "1", "-CAfile", clientCA.path] }
        arguments += extraArguments
        let process = try ManagedProcess(name: "s_server-\(name)", executable: openssl, arguments: arguments,
                                         logFile: directory.appendingPathComponent("s_server-\(name).log"))
        do {
            try await Loopback.waitForPort(port, of: process, timeout: timeout)
        } catch {
            process.stopInBackground()
            throw error
        }
        return OpenSSLServer(port: port, process: process)
    }

    /// Stops `s_server`; returns once it has exited.
    public func stop() async { await process.stop() }

    /// For a `defer`: SIGTERM now, SIGKILL from a thread of its own later.
    public func stopInBackground() { process.stopInBackground() }
}
