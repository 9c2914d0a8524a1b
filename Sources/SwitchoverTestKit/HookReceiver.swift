import Foundation

/// A real HTTP receiver for webhooks and notifications: Python's `http.server`
/// (ThreadingHTTPServer) on 127.0.0.1 and a free port, run by PID. It records every request it
/// gets (path, headers, body, time) as a line of `requests.jsonl`, and answers each path as the
/// test says (`answer(_:status:delay:location:)`): a status, a delay before answering (a slow
/// receiver), a `Location` (a redirect), or a body of garbage. Default: 200 with `{"ok": true}`.
///
/// A script server is enough here: hooks and notifications are a request now and then, never
/// load (nginx stays the load's backend).
public final class HookReceiver: Sendable {
    public let port: Int
    public let directory: URL
    private let process: ManagedProcess

    public static func start(in parent: URL? = nil) async throws -> HookReceiver {
        let receiver = try HookReceiver(parent: parent)
        do {
            try await Loopback.waitForPort(receiver.port, of: receiver.process, timeout: 15)
        } catch {
            receiver.process.stopInBackground()
            throw error
        }
        return receiver
    }

    /// `start` on the calling thread, which it blocks until the receiver listens (the benchmark's labs).
    @available(*, noasync, message: "blocks its thread: `try await HookReceiver.start(...)`")
    public convenience init(blockingIn parent: URL?) throws {
        try self.init(parent: parent)
        do {
            try Loopback.waitForPort(port, of: process, timeout: 15)
        } catch {
            process.stopInBackground()
            throw error
        }
    }

    private init(parent: URL?) throws {
        let base = try parent ?? TemporaryDirectory.make("hooks")
        directory = base.appendingPathComponent("hook-receiver-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("answers"), withIntermediateDirectories: true)
        let script = directory.appendingPathComponent("receiver.py")
        try Data(Self.script.utf8).write(to: script)
        port = try Loopback.freePort()
        process = try ManagedProcess(name: "hook-receiver", executable: try Tools.require("python3"),
                                     arguments: [script.path, "\(port)", directory.path],
                                     logFile: directory.appendingPathComponent("receiver.log"))
    }

    /// `http://127.0.0.1:PORT/<path>`.
    public func url(_ path: String) -> String { "http://127.0.0.1:\(port)/\(path)" }

    /// How `path` is answered from now on.
    public func answer(_ path: String, status: Int, delay: Double = 0, location: String? = nil, body: String? = nil) throws {
        var answer: [String: Any] = ["status": status, "delay": delay]
        if let location { answer["location"] = location }
        if let body { answer["body"] = body }
        let data = try JSONSerialization.data(withJSONObject: answer)
        // Replaced by rename: the server never reads half a file.
        let file = directory.appendingPathComponent("answers/\(path)")
        let temporary = directory.appendingPathComponent("answers/.\(path).tmp")
        try data.write(to: temporary)
        guard rename(temporary.path, file.path) == 0 else { throw TestKitError("could not set the answer for \(path): errno \(errno)") }
    }

    /// One request as received.
    public struct Request: Sendable {
        public var path: String
        /// Header names in lowercase.
        public var headers: [String: String]
        public var body: Data
        public var at: Double
        /// The body as a JSON object, when it is one.
        public var json: [String: any Sendable]? {
            (try? JSONSerialization.jsonObject(with: body)) as? [String: any Sendable]
        }
        public func string(_ key: String) -> String? { json?[key] as? String }
    }

    /// Every request received so far (to `path` only, when given), oldest first.
    public func requests(_ path: String? = nil) -> [Request] {
        guard let text = try? String(contentsOf: directory.appendingPathComponent("requests.jsonl"), encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line -> Request? in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let p = object["path"] as? String, let headers = object["headers"] as? [String: String],
                  let body = (object["body"] as? String).flatMap({ Data(base64Encoded: $0) }), let at = object["at"] as? Double
            else { return nil }
            return Request(path: p, headers: headers, body: body, at: at)
        }.filter { path == nil || $0.path == "/" + path! }
    }

    public func stop() async { await process.stop() }
    public func stopInBackground() { process.stopInBackground() }

    static let script = #"""
    import base64, json, os, sys, threading, time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    port, folder = int(sys.argv[1]), sys.argv[2]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def log_message(self, *args):
            pass
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            record = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                      "body": base64.b64encode(body).decode(), "at": time.time()}
            with lock:
                with open(os.path.join(folder, "requests.jsonl"), "a") as log:
                    log.write(json.dumps(record) + "\n")
            answer = {"status": 200, "delay": 0}
            try:
                with open(os.path.join(folder, "answers", self.path.strip("/"))) as f:
                    answer = json.load(f)
            except (OSError, ValueError):
                pass
            if answer.get("delay"):
                time.sleep(answer["delay"])
            reply = answer.get("body", '{"ok": true}').encode()
            self.send_response(answer["status"])
            if "location" in answer:
                self.send_header("Location", answer["location"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
        do_GET = do_POST

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
    """#
}
