import Foundation

/// One backend server for blue or green: an nginx on 127.0.0.1 and a free port that answers
/// every request with `200 <name>\n`, or `503` while a file `fail` exists in its folder (fault
/// injection without a reload). Every request is one line in `accessLog`, so a test counts
/// what reached this server by counting lines.
///
/// `GET /slowhealth` answers 200 in about 2.5 s (2.5 KB at 1 KB/s): a health endpoint that makes
/// a preflight take that long.
///
/// `GET /slow` is a long download: 1 MB sent at 1 KB/s (`limit_rate`), so a client that asks
/// for it keeps a request in flight on this server for as long as it stays connected (what
/// keeps a draining server busy: in HTTP mode a load balancer counts requests in flight, not
/// idle keep-alive connections).
///
/// nginx rather than a script server: it stands 2,000 requests at concurrency 20 without a
/// dropped connection, and a dropped connection would skew the counted split.
public final class NginxBackend: Sendable {
    public let name: String
    public let directory: URL
    public let accessLog: URL
    private let server: NginxServer

    /// Starts nginx (through `NginxServer`) for server `name` in a folder of its own under
    /// `parent` (or a new temporary folder) and waits until it listens, suspending meanwhile.
    public static func start(name: String, in parent: URL? = nil) async throws -> NginxBackend {
        let site = try Site(name: name, in: parent)
        return NginxBackend(name: name, site: site,
                            server: try await NginxServer.start(name: name, body: site.body, directory: site.directory))
    }

    /// `start` on the calling thread, which it blocks until nginx listens (the benchmark's labs).
    @available(*, noasync, message: "blocks its thread: `try await NginxBackend.start(...)`")
    public convenience init(name: String, in parent: URL? = nil) throws {
        let site = try Site(name: name, in: parent)
        self.init(name: name, site: site,
                  server: try NginxServer.start(name: name, body: site.body, directory: site.directory))
    }

    private init(name: String, site: Site, server: NginxServer) {
        self.server = server
        self.name = name
        self.directory = site.directory
        self.accessLog = site.accessLog
    }

    /// The backend's folder, its files and the `server { }` body that serves them.
    private struct Site {
        let directory: URL
        let accessLog: URL
        let body: String

        init(name: String, in parent: URL?) throws {
            let base = try parent ?? TemporaryDirectory.make("nginx")
            let directory = base.appendingPathComponent("nginx-\(name)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o755])
            // nginx workers (www-data) test for the fail file: every folder on the way must be open.
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: base.path)
            let accessLog = directory.appendingPathComponent("access.log")
            let failFile = directory.appendingPathComponent("fail").path
            let slowFile = directory.appendingPathComponent("slow.bin")
            try Data(count: 1 << 20).write(to: slowFile)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: slowFile.path)
            let slowHealthFile = directory.appendingPathComponent("slowhealth.txt")
            try Data(repeating: UInt8(ascii: "."), count: 2_560).write(to: slowHealthFile)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: slowHealthFile.path)
            // The server-level access_log overrides NginxServer's http-level `access_log off`.
            let body = """
                access_log \(accessLog.path);
                        keepalive_requests 100000;
                        location = /slow {
                            limit_rate 1k;
                            default_type application/octet-stream;
                            alias \(slowFile.path);
                        }
                        location = /slowhealth {
                            limit_rate 1k;
                            default_type text/plain;
                            alias \(slowHealthFile.path);
                        }
                        location / {
                            if (-f \(failFile)) { return 503 "\(name) failing\\n"; }
                            return 200 "\(name)\\n";
                        }
                """
            self.directory = directory
            self.accessLog = accessLog
            self.body = body
        }
    }

    public var port: Int { server.port }

    /// `127.0.0.1:port`, for a load balancer's server line.
    public var address: String { "127.0.0.1:\(port)" }
    public var pid: Int32 { server.process.pid }

    /// Makes the server answer 503 (`true`) or 200 again (`false`) from the next request on.
    public func fail(_ on: Bool) throws {
        let file = directory.appendingPathComponent("fail")
        if on {
            _ = FileManager.default.createFile(atPath: file.path, contents: Data())
        } else if FileManager.default.fileExists(atPath: file.path) {
            try FileManager.default.removeItem(at: file)
        }
    }

    /// How many requests reached this server so far (lines in its access log). nginx writes
    /// the line when the response is done, so count after the load generator has finished.
    public func requestCount() throws -> Int {
        let data = (try? Data(contentsOf: accessLog)) ?? Data()
        return data.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
    }

    /// Stops nginx; returns once it has exited.
    public func stop() async { await server.stop() }

    /// `stop` on the calling thread, which it blocks until nginx has exited (the benchmark).
    @available(*, noasync, message: "blocks its thread: `await stop()`, or `stopInBackground()` in a defer")
    public func stop() { server.stop() }

    /// For a `defer` or `deinit`: SIGTERM now, SIGKILL from a thread of its own later.
    public func stopInBackground() { server.stopInBackground() }

    deinit { server.stopInBackground() }
}
