import Foundation

/// STAND-IN for two answers of AWS that cannot be produced on this machine: throttling (real
/// AWS throttles a busy account; moto never does) and a change batch that stays `PENDING` for a
/// while (moto answers `INSYNC` at once). A small Python proxy (`http.server`, threaded) on
/// 127.0.0.1 and a free port, in front of a real moto:
/// - `throttle(next:code:status:)`: the next N requests get AWS's error answer (`<ErrorResponse>
///   <Error><Type>Sender</Type><Code>Throttling</Code>...`, 400 by default) without reaching moto;
/// - `holdInsync(polls:)`: the next N `GetChange` answers have `INSYNC` turned into `PENDING`;
/// - every other request goes to moto as it came (method, path, headers including `Host` and
///   the signature, body), and moto's answer comes back as it was.
/// Everything else (signing, parsing, the change itself) is real: only these two answers are made up.
public final class AWSStandIn: Sendable {
    public let port: Int
    public let directory: URL
    private let process: ManagedProcess

    /// `http://127.0.0.1:PORT`: point the client here instead of at moto.
    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Starts the proxy in front of `upstreamPort` (moto's), on `port` (a free one when nil: give
    /// a stopped stand-in's port to bring "AWS" back where a client points).
    public static func start(upstreamPort: Int, port: Int? = nil, in parent: URL? = nil) async throws -> AWSStandIn {
        let standIn = try AWSStandIn(upstreamPort: upstreamPort, port: port, parent: parent)
        do {
            try await Loopback.waitForPort(standIn.port, of: standIn.process, timeout: 15)
        } catch {
            standIn.process.stopInBackground()
            throw error
        }
        return standIn
    }

    private init(upstreamPort: Int, port: Int?, parent: URL?) throws {
        let base = try parent ?? TemporaryDirectory.make("aws-stand-in")
        directory = base.appendingPathComponent("aws-stand-in-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let script = directory.appendingPathComponent("stand_in.py")
        try Data(Self.script.utf8).write(to: script)
        self.port = try port ?? Loopback.freePort()
        process = try ManagedProcess(name: "aws-stand-in", executable: try Tools.require("python3"),
                                     arguments: [script.path, "\(self.port)", "\(upstreamPort)"],
                                     logFile: directory.appendingPathComponent("stand-in.log"))
    }

    public func stop() async { await process.stop() }
    public func stopInBackground() { process.stopInBackground() }

    /// The next `count` requests are answered `status` with AWS's XML error `code`, moto never
    /// seeing them (any code and status: `InternalFailure` with 500 stands for an AWS outage). With `echoSessionToken`, the message quotes the request's
    /// `X-Amz-Security-Token`, as a real `SignatureDoesNotMatch` may quote a canonical request.
    public func throttle(next count: Int, code: String = "Throttling", status: Int = 400, echoSessionToken: Bool = false) async throws {
        try await control("throttle", ["count": count, "code": code, "status": status, "echo": echoSessionToken])
    }

    /// The next `polls` GetChange answers say `PENDING` instead of `INSYNC`.
    public func holdInsync(polls: Int) async throws {
        try await control("pending", ["polls": polls])
    }

    /// What the proxy did so far.
    public struct Counts: Sendable, Equatable {
        public var throttled: Int
        public var forwarded: Int
        public var heldPending: Int

        public init(throttled: Int, forwarded: Int, heldPending: Int) {
            self.throttled = throttled
            self.forwarded = forwarded
            self.heldPending = heldPending
        }
    }

    public func counts() async throws -> Counts {
        let body = try await exchange("GET /__stand-in__/counts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        guard let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Int] else {
            throw TestKitError("aws stand-in: counts answered \(body)")
        }
        return Counts(throttled: object["throttled"] ?? 0, forwarded: object["forwarded"] ?? 0, heldPending: object["pending"] ?? 0)
    }

    private func control(_ what: String, _ settings: [String: any Sendable]) async throws {
        let body = String(decoding: try JSONSerialization.data(withJSONObject: settings), as: UTF8.self)
        _ = try await exchange("POST /__stand-in__/\(what) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
    }

    /// The body of an answer to a raw request; throws unless it is a 200.
    private func exchange(_ request: String) async throws -> String {
        let answer = try await Loopback.httpExchange(port: port, request: request)
        guard answer.hasPrefix("HTTP/1.0 200") || answer.hasPrefix("HTTP/1.1 200"),
              let split = answer.range(of: "\r\n\r\n") else {
            throw TestKitError("aws stand-in answered: \(answer.prefix(300))")
        }
        return String(answer[split.upperBound...])
    }

    static let script = #"""
        import http.client, json, sys, threading, uuid
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        port, upstream = int(sys.argv[1]), int(sys.argv[2])
        lock = threading.Lock()
        state = {"throttle": 0, "code": "Throttling", "status": 400, "echo": False, "pending": 0,
                 "counts": {"throttled": 0, "forwarded": 0, "pending": 0}}

        def escape(text):
            return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self, status, body, headers=()):
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.startswith("/__stand-in__/"):
                    what = self.path[len("/__stand-in__/"):]
                    with lock:
                        if what == "throttle":
                            settings = json.loads(body)
                            state.update(throttle=settings["count"], code=settings["code"], status=settings["status"],
                                         echo=settings["echo"])
                        elif what == "pending":
                            state["pending"] = json.loads(body)["polls"]
                        counts = json.dumps(state["counts"]).encode()
                    return self.answer(200, counts, [("Content-Type", "application/json")])
                with lock:
                    throttled = state["throttle"] > 0
                    if throttled:
                        state["throttle"] -= 1
                        state["counts"]["throttled"] += 1
                        code, status, echo = state["code"], state["status"], state["echo"]
                if throttled:
                    message = "Rate exceeded"
                    if echo:
                        message += " (request token: %s)" % self.headers.get("X-Amz-Security-Token", "none")
                    xml = ('<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type>'
                           '<Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>'
                           % (escape(code), escape(message), uuid.uuid4()))
                    return self.answer(status, xml.encode(), [("Content-Type", "text/xml")])
                connection = http.client.HTTPConnection("127.0.0.1", upstream, timeout=30)
                connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in ("connection", "keep-alive", "transfer-encoding"):
                        connection.putheader(name, value)
                if "Content-Length" not in self.headers and body:
                    connection.putheader("Content-Length", str(len(body)))
                connection.endheaders(body if body else None)
                response = connection.getresponse()
                data = response.read()
                headers = [(n, v) for n, v in response.getheaders()
                           if n.lower() not in ("content-length", "connection", "transfer-encoding", "keep-alive")]
                connection.close()
                if self.command == "GET" and "/change/" in self.path and b"<Status>INSYNC</Status>" in data:
                    with lock:
                        hold = state["pending"] > 0
                        if hold:
                            state["pending"] -= 1
                            state["counts"]["pending"] += 1
                    if hold:
                        data = data.replace(b"<Status>INSYNC</Status>", b"<Status>PENDING</Status>")
                with lock:
                    state["counts"]["forwarded"] += 1
                self.answer(response.status, data, headers)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

            def log_message(self, format, *args):
                sys.stderr.write("%s\n" % (format % args))

        ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
        """#
}
