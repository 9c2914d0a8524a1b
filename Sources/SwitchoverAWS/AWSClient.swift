import Foundation
import Logging
import SwitchoverNet

/// Sends signed AWS API requests over SwitchoverNet's `HTTPClient` (libcurl, TLS verification
/// always on) and turns AWS's error answers into `AWSError`s.
///
/// - Each attempt is signed anew, at the injected clock's time (a retried request must carry a
///   fresh `x-amz-date`).
/// - A throttling answer (`Throttling`, `PriorRequestNotComplete`, HTTP 429, ...) is retried
///   with capped exponential backoff and jitter, at most `retry.maxRetries` times, then surfaced
///   as `.throttled`. Throttling is the only thing retried: AWS refused the request, so sending
///   it again cannot apply it twice. A timeout or a 5xx might have been applied; whether to try
///   again is the caller's decision (the coordinator pauses), so it is surfaced at once.
/// - An endpoint override (`http://127.0.0.1:5000` for moto) is allowed; plain `http` only to a
///   loopback address, so that a signed request (replayable for minutes) never crosses a
///   network in the clear.
/// - Nothing secret is logged or put into an error: headers are never logged, and an error
///   message AWS echoes back is scrubbed of the secret key and the session token.
public final class AWSClient: Sendable {
    /// When and how often a throttled request is sent again.
    public struct RetryPolicy: Sendable, Hashable {
        /// Retries after the first attempt (0: none).
        public var maxRetries: Int
        /// The backoff before the first retry; it doubles for each retry after it.
        public var baseDelay: Duration
        /// No backoff is longer than this.
        public var maxDelay: Duration

        public init(maxRetries: Int = 4, baseDelay: Duration = .milliseconds(200), maxDelay: Duration = .seconds(5)) {
            self.maxRetries = max(0, maxRetries)
            self.baseDelay = baseDelay
            self.maxDelay = maxDelay
        }

        /// The wait before retry number `retry` (1-based): half of `min(maxDelay, baseDelay ·
        /// 2^(retry-1))` plus a random part of up to the other half ("equal jitter": never
        /// shorter than half the step, so backoff still backs off, while clients throttled
        /// together spread out). `unit` is a random number in 0..<1.
        public func delay(beforeRetry retry: Int, unit: Double) -> Duration {
            let step = min(maxDelay, baseDelay * (1 << min(max(0, retry - 1), 30)))
            return step / 2 + step / 2 * min(max(0, unit), 1)
        }
    }

    public let credentials: AWSCredentials
    public let retry: RetryPolicy
    /// Each request's time limit where `send` names none; nil: the HTTP client's.
    public let requestTimeout: Duration?
    private let http: HTTPClient
    private let logger: Logger
    private let now: @Sendable () -> Date
    private let random: @Sendable () -> Double

    /// `now` signs each attempt (inject a fixed clock to make requests reproducible); `random`
    /// (0..<1) jitters the backoff.
    public init(credentials: AWSCredentials, http: HTTPClient, retry: RetryPolicy = RetryPolicy(), requestTimeout: Duration? = nil,
                logger: Logger, now: @escaping @Sendable () -> Date = { Date() },
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.credentials = credentials
        self.retry = retry
        self.requestTimeout = requestTimeout
        self.http = http
        self.logger = logger
        self.now = now
        self.random = random
    }

    /// This client with another retry policy and, when given, a time limit for each request
    /// (connect included) where the call names none, over the same connections and credentials:
    /// a read in a sampling loop retries nothing (`RetryPolicy(maxRetries: 0)`), and gives up on
    /// an endpoint that drops packets long before the HTTP client's own timeout.
    public func with(retry: RetryPolicy, requestTimeout: Duration? = nil) -> AWSClient {
        AWSClient(credentials: credentials, http: http, retry: retry, requestTimeout: requestTimeout ?? self.requestTimeout,
                  logger: logger, now: now, random: random)
    }

    /// Sends `request` signed by `signer` and returns the 2xx response. `operation` and
    /// `resource` name the call in logs and errors. Throws `AWSError` (or `CancellationError`).
    public func send(_ request: AWSRequest, signer: SigV4Signer, operation: String, resource: String? = nil,
                     timeout: Duration? = nil) async throws -> HTTPResponse {
        func fail(_ error: AWSError, attempts: Int) -> AWSError {
            error.with(service: signer.service, operation: operation, resource: resource, attempts: attempts)
        }
        do {
            try Self.checkEndpoint(request.endpoint)
        } catch {
            throw fail(error, attempts: 0)
        }
        var attempt = 0
        while true {
            attempt += 1
            try Task.checkCancellation()
            let response: HTTPResponse
            do {
                let signature = try signer.sign(request, credentials: credentials, at: now())
                // Host goes explicitly, the value signed (the request's own, or the endpoint's),
                // so that what curl sends is what was signed.
                var headers = request.headers.filter { !["authorization", "x-amz-date", "x-amz-security-token"].contains($0.name.lowercased()) }
                if !headers.contains(where: { $0.name.lowercased() == "host" }) {
                    headers.insert(HTTPHeader("Host", try SigV4Signer.hostHeader(of: request.endpoint)), at: 0)
                }
                headers += signature.headers
                let body: Data? = request.body.isEmpty && ["GET", "HEAD", "DELETE"].contains(request.method.uppercased()) ? nil : request.body
                response = try await http.execute(HTTPRequest(method: request.method, url: request.url, headers: headers,
                                                              body: body, timeout: timeout ?? requestTimeout))
            } catch let error as AWSError {
                throw fail(error, attempts: attempt)
            } catch let error as HTTPError {
                throw fail(Self.unreachable(error), attempts: attempt)
            }
            logger.debug("aws request", metadata: [
                "service": "\(signer.service)", "operation": "\(operation)", "status": "\(response.status)",
                "attempt": "\(attempt)", "time": "\(response.totalTime)",
            ])
            if (200..<300).contains(response.status) { return response }

            let error = scrubbed(Self.error(from: response))
            if error.kind == .throttled && attempt <= retry.maxRetries {
                let wait = retry.delay(beforeRetry: attempt, unit: random())
                logger.info("aws request throttled; retrying", metadata: [
                    "service": "\(signer.service)", "operation": "\(operation)", "code": "\(error.code ?? "HTTP \(response.status)")",
                    "retry": "\(attempt)", "of": "\(retry.maxRetries)", "backoff": "\(wait)",
                ])
                try await Task.sleep(for: wait)
                continue
            }
            throw fail(error, attempts: attempt)
        }
    }

    // MARK: - Errors

    /// The `AWSError` an error answer stands for, in any of the shapes AWS and moto use:
    /// - `<ErrorResponse><Error><Code/><Message/></Error><RequestId/></ErrorResponse>` (AWS's
    ///   REST-XML and Query APIs; ELBv2 with a namespace on the root);
    /// - `<ErrorResponse><Errors><Error>...</Error></Errors></ErrorResponse>` (moto's Route53);
    /// - `<Response><Errors><Error>...` (EC2-style) and a bare `<Error>` (S3);
    /// - `<InvalidChangeBatch><Messages><Message/>...` (Route53's rejected change batch: the
    ///   root's name is the code);
    /// - a JSON body (`__type`/`code`, `message`/`Message`) or only an `x-amzn-ErrorType`
    ///   header; or nothing at all, where the status alone decides.
    static func error(from response: HTTPResponse) -> AWSError {
        var code: String?
        var message: String?
        var requestId = response.header("x-amzn-RequestId") ?? response.header("x-amz-request-id")
        if let root = try? XMLElement.parse(response.body) {
            let error = root.name == "Error" ? root : root.first("Error")
            if let error {
                code = error.string("Code")
                message = error.string("Message")
            } else if let messages = root.child("Messages") {
                code = root.name
                message = messages.children("Message").map { $0.text.trimmingCharacters(in: .whitespacesAndNewlines) }
                    .joined(separator: "; ")
            }
            requestId = requestId ?? root.string("RequestId") ?? root.string("RequestID")
        } else if let json = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] {
            code = (json["__type"] as? String ?? json["code"] as? String ?? json["Code"] as? String)
                .map { $0.split(separator: "#").last.map(String.init) ?? $0 }
            message = json["message"] as? String ?? json["Message"] as? String
        }
        if code == nil, let header = response.header("x-amzn-ErrorType") {
            code = header.split(separator: ":").first.map(String.init)
        }
        if let c = code, c.isEmpty { code = nil }
        let kind = AWSError.classify(code: code, httpStatus: response.status)
        let fallback = response.body.isEmpty ? "no error body" : "unrecognized error body: \(String(decoding: response.body.prefix(300), as: UTF8.self))"
        return AWSError(kind, message.flatMap { $0.isEmpty ? nil : $0 } ?? fallback, code: code, httpStatus: response.status,
                        requestId: requestId)
    }

    /// A request that got no answer: refused, timed out, unresolvable are `.unavailable`; a
    /// certificate that did not verify and the like are `.other`, with curl's words.
    static func unreachable(_ error: HTTPError) -> AWSError {
        let unavailable: [HTTPError.Code] = [.connectionRefused, .couldNotConnect, .timeout, .couldNotResolveHost, .sendFailed, .receiveFailed]
        return AWSError(unavailable.contains(error.code) ? .unavailable : .other, "\(error)")
    }

    /// `error` with the secret key and session token replaced wherever the server echoed them.
    private func scrubbed(_ error: AWSError) -> AWSError {
        var message = error.message
        for secret in [credentials.secretAccessKey, credentials.sessionToken].compactMap({ $0 }) where !secret.isEmpty {
            message = message.replacingOccurrences(of: secret.reveal, with: "<redacted>")
        }
        guard message != error.message else { return error }
        return AWSError(error.kind, message, code: error.code, httpStatus: error.httpStatus, requestId: error.requestId)
    }

    /// https anywhere; http only to loopback (127.0.0.0/8, ::1, localhost).
    static func checkEndpoint(_ endpoint: String) throws(AWSError) {
        let host = try SigV4Signer.hostHeader(of: endpoint)
        guard endpoint.lowercased().hasPrefix("http://") else { return }
        let name = host.hasPrefix("[") ? String(host.dropFirst().prefix { $0 != "]" })
            : String(host.prefix { $0 != ":" })
        let loopback = name == "localhost" || name == "::1" || name.hasPrefix("127.")
        guard loopback else {
            throw AWSError(.invalidRequest, "endpoint '\(endpoint)' is plain http to a host that is not loopback: use https (plain http is allowed only to 127.0.0.1, ::1 or localhost, for an emulator)")
        }
    }
}
