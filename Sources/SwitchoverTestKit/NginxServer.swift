import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real nginx on 127.0.0.1 and a free port, with its own config, pid, logs and temp
/// folders in a test folder; stopped by PID when stopped or released.
///
/// Kept minimal on purpose: `body` is the inside of the `server { }` block, so a test says
/// exactly what the server answers (`location / { return 200 "hello"; }`). Extend it for richer
/// backends rather than writing a second launcher.
public final class NginxServer: Sendable {
    public let port: Int
    public let directory: URL
    public let process: ManagedProcess

    /// `http://127.0.0.1:PORT`
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    private init(port: Int, directory: URL, process: ManagedProcess) {
        self.port = port
        self.directory = directory
        self.process = process
    }

    /// Writes a config and starts nginx in the foreground; returns once the port accepts
    /// connections, suspending while it waits. `body` goes inside
    /// `server { listen 127.0.0.1:PORT; ... }`; `httpDirectives` inside `http { }` before it.
    public static func start(name: String, body: String, httpDirectives: String = "", directory: URL? = nil,
                             listenOptions: String = "", timeout: TimeInterval = 15) async throws -> NginxServer {
        let server = try launch(name: name, body: body, httpDirectives: httpDirectives, directory: directory,
                                listenOptions: listenOptions)
        do {
            try await Loopback.waitForPort(server.port, of: server.process, timeout: timeout)
        } catch {
            throw server.failedToStart(error)
        }
        return server
    }

    /// `start` on the calling thread, which it blocks until nginx listens (`NginxBackend`'s
    /// blocking form, for the benchmark's backends).
    @available(*, noasync, message: "blocks its thread: `try await NginxServer.start(...)`")
    static func start(name: String, body: String, httpDirectives: String = "", directory: URL? = nil,
                             timeout: TimeInterval = 15) throws -> NginxServer {
        let server = try launch(name: name, body: body, httpDirectives: httpDirectives, directory: directory)
        do {
            try Loopback.waitForPort(server.port, of: server.process, timeout: timeout)
        } catch {
            throw server.failedToStart(error)
        }
        return server
    }

    /// Stops it and says why, with nginx's error log.
    private func failedToStart(_ error: any Error) -> TestKitError {
        let errors = (try? String(contentsOf: directory.appendingPathComponent("error.log"), encoding: .utf8)) ?? ""
        process.stopInBackground()
        return TestKitError("\(error)\n\(errors)")
    }

    /// Writes the config and starts nginx, without waiting for it to listen.
    private static func launch(name: String, body: String, httpDirectives: String, directory: URL?,
                               listenOptions: String = "") throws -> NginxServer {
        let nginx = try Tools.require("nginx")
        let dir = try directory ?? TemporaryDirectory.make("nginx-\(name)")
        let tmp = dir.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        let port = try Loopback.freePort()
        // As root, nginx workers switch to an unprivileged user; name one that exists.
        let user = getuid() == 0 ? (getpwnam("www-data") != nil ? "user www-data;" : "user nobody nogroup;") : ""
        let config = """
        \(user)
        worker_processes 1;
        pid \(dir.path)/nginx.pid;
        error_log \(dir.path)/error.log info;
        events { worker_connections 1024; }
        http {
            access_log off;
            client_body_temp_path \(tmp.path)/client_body;
            proxy_temp_path \(tmp.path)/proxy;
            fastcgi_temp_path \(tmp.path)/fastcgi;
            uwsgi_temp_path \(tmp.path)/uwsgi;
            scgi_temp_path \(tmp.path)/scgi;
            default_type text/plain;
            \(httpDirectives)
            server {
                listen 127.0.0.1:\(port) \(listenOptions);
                \(body)
            }
        }

        """
        let configFile = dir.appendingPathComponent("nginx.conf")
        try config.write(to: configFile, atomically: true, encoding: .utf8)
        let process = try ManagedProcess(
            name: "nginx-\(name)", executable: nginx,
            arguments: ["-p", dir.path, "-c", configFile.path, "-e", dir.path + "/error.log", "-g", "daemon off;"],
            logFile: dir.appendingPathComponent("nginx.out"))
        return NginxServer(port: port, directory: dir, process: process)
    }

    /// Stops nginx; returns once it has exited.
    public func stop() async { await process.stop() }

    /// `stop` on the calling thread, which it blocks until nginx has exited (`NginxBackend`'s
    /// blocking form, for the benchmark).
    @available(*, noasync, message: "blocks its thread: `await stop()`, or `stopInBackground()` in a defer")
    func stop() { process.stop() }

    /// For a `defer` or `deinit`: SIGTERM now, SIGKILL from a thread of its own later.
    public func stopInBackground() { process.stopInBackground() }
}
