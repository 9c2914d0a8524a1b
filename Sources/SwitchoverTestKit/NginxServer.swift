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
    /// connections. `body` goes inside `server { listen 127.0.0.1:PORT; ... }`;
    /// `httpDirectives` inside `http { }` before it.
    public static func start(name: String, body: String, httpDirectives: String = "", directory: URL? = nil,
                             timeout: TimeInterval = 15) throws -> NginxServer {
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
                listen 127.0.0.1:\(port);
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
        do {
            try Loopback.waitForPort(port, of: process, timeout: timeout)
        } catch {
            let errors = (try? String(contentsOf: dir.appendingPathComponent("error.log"), encoding: .utf8)) ?? ""
            process.stop()
            throw TestKitError("\(error)\n\(errors)")
        }
        return NginxServer(port: port, directory: dir, process: process)
    }

    public func stop() { process.stop() }
}
