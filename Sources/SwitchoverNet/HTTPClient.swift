import CCurl
import Foundation
import Logging

/// An HTTP(S) client over libcurl, for the coordinator's frequent small requests: Prometheus
/// queries, Envoy admin calls, health probes, every 250 ms if need be.
///
/// Why libcurl: one mature TLS and HTTP stack on every platform, with mutual TLS from PEM
/// files, exact error codes, and connection reuse for free.
///
/// - Transfers run on Dispatch threads (see `BlockingExecutor`), never on the cooperative
///   pool, and the caller awaits them.
/// - Easy handles are reused: a finished handle goes back to a small idle list, and curl keeps
///   its connections (and TLS sessions) alive for the next request to the same host. Up to
///   `maxIdleHandles` requests can run at once without creating handles; more create
///   temporary ones.
/// - TLS verification (peer and host name) is always on.
/// - Request headers are never logged: they may carry `Authorization`.
/// - Cancelling the awaiting task aborts the transfer (within about a second: curl's progress
///   callback runs at least once a second) and throws `CancellationError`.
///
/// `@unchecked Sendable`: the only mutable state, the idle handle list, is guarded by `lock`;
/// the configuration and logger are immutable.
public final class HTTPClient: @unchecked Sendable {
    /// Settings for every request of one client.
    public struct Configuration: Sendable {
        public var tls: TLSConfiguration
        /// Default time to connect (TCP and TLS), when a request does not set its own.
        public var connectTimeout: Duration
        /// Default time for the whole exchange, when a request does not set its own.
        public var timeout: Duration
        /// A larger body fails with `.responseTooLarge` instead of filling memory.
        public var maxResponseBytes: Int
        /// Follow 3xx redirects (off by default: an admin API that redirects is a surprise
        /// worth seeing).
        public var followRedirects: Bool
        /// Handles kept for reuse (each keeps its own live connections).
        public var maxIdleHandles: Int

        public init(tls: TLSConfiguration = .systemTrust, connectTimeout: Duration = .seconds(5),
                    timeout: Duration = .seconds(30), maxResponseBytes: Int = 64 << 20,
                    followRedirects: Bool = false, maxIdleHandles: Int = 4) {
            self.tls = tls
            self.connectTimeout = connectTimeout
            self.timeout = timeout
            self.maxResponseBytes = maxResponseBytes
            self.followRedirects = followRedirects
            self.maxIdleHandles = maxIdleHandles
        }
    }

    public let configuration: Configuration
    private let logger: Logger
    private let lock = NSLock()
    private var idleHandles: [CurlEasy] = []

    /// Why no request can be made (libcurl, loaded on the first request, could not be), or nil.
    /// Asking loads it: a preflight asks when the run will need HTTP, so that a missing libcurl
    /// refuses the run before any weight moves, not at its first Prometheus gate.
    public static var unavailable: String? { curlLoadFailure }

    public init(configuration: Configuration = Configuration(), logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Sends `request` and returns the response, whatever its status code.
    /// Throws `HTTPError` when no complete response arrived, `CancellationError` when the
    /// task was cancelled.
    public func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        try Task.checkCancellation()
        let flag = CancellationFlag()
        let result: Result<HTTPResponse, HTTPError> = try await withTaskCancellationHandler {
            try await BlockingExecutor.run { [self] in
                let handle = try checkOut()
                defer { checkIn(handle) }
                return Result { try perform(request, on: handle, cancellation: flag) }
                    .mapError { $0 as? HTTPError ?? HTTPError(code: .other, curlCode: -1, message: "\($0)",
                                                               url: request.shownURL ?? request.url, method: request.method) }
            }
        } onCancel: {
            flag.cancel()
        }
        if flag.isCancelled { throw CancellationError() }
        return try result.get()
    }

    /// Sends `request` on the calling thread and returns the response, whatever its status code.
    /// For callers that are synchronous by contract (a journal store, whose every operation is
    /// one blocking write like SQLite's): keep the request's timeouts short, since the thread
    /// waits for them. Not cancellable; throws `HTTPError` when no complete response arrived.
    public func executeBlocking(_ request: HTTPRequest) throws -> HTTPResponse {
        let handle = try checkOut()
        defer { checkIn(handle) }
        do {
            return try perform(request, on: handle, cancellation: CancellationFlag())
        } catch let error as HTTPError {
            throw error
        } catch {
            throw HTTPError(code: .other, curlCode: -1, message: "\(error)", url: request.shownURL ?? request.url,
                            method: request.method)
        }
    }

    /// GET `url`.
    public func get(_ url: String, headers: [HTTPHeader] = [], timeout: Duration? = nil) async throws -> HTTPResponse {
        try await execute(HTTPRequest(method: "GET", url: url, headers: headers, timeout: timeout))
    }

    /// POST `body` to `url`.
    public func post(_ url: String, body: Data, headers: [HTTPHeader] = [],
                     timeout: Duration? = nil) async throws -> HTTPResponse {
        try await execute(HTTPRequest(method: "POST", url: url, headers: headers, body: body, timeout: timeout))
    }

    // MARK: - Handles

    private func checkOut() throws -> CurlEasy {
        if let idle = lock.withLock({ idleHandles.popLast() }) { return idle }
        return try CurlEasy()
    }

    private func checkIn(_ handle: CurlEasy) {
        lock.withLock {
            if idleHandles.count < configuration.maxIdleHandles { idleHandles.append(handle) }
        }
    }

    // MARK: - One transfer (runs on a Dispatch thread)

    private func perform(_ request: HTTPRequest, on easy: CurlEasy,
                         cancellation: CancellationFlag) throws -> HTTPResponse {
        let method = request.method.uppercased()
        func fail(_ code: HTTPError.Code, _ message: String) -> HTTPError {
            HTTPError(code: code, curlCode: -1, message: message, url: request.shownURL ?? request.url, method: method)
        }
        guard !method.isEmpty, method.allSatisfy({ $0.isLetter || $0 == "-" }) else {
            throw fail(.invalidRequest, "method '\(method)' is not a token")
        }
        for header in request.headers {
            let bad = header.name.isEmpty || header.name.contains(where: { $0 == ":" || $0.isNewline || $0 == " " })
                || header.value.contains(where: \.isNewline)
            // The description redacts secret values, so the message never shows a token.
            if bad { throw fail(.invalidRequest, "header '\(header)' has an empty name, a colon or a line break") }
        }

        let h = easy.pointer
        switchover_curl_easy_reset(h)  // Clears options; keeps live connections, DNS and TLS session caches.
        easy.clearError()
        let state = TransferState(maxBytes: configuration.maxResponseBytes, cancellation: cancellation)
        // "Expect:" turns off curl's 100-continue wait for bodies over 1 kB, a wasted round trip
        // (up to 1 s) against servers that do not answer it.
        let headerList = try CurlHeaderList(lines: request.headers.map { "\($0.name): \($0.value)" } + ["Expect:"])
        let connectTimeout = request.connectTimeout ?? configuration.connectTimeout
        let timeout = request.timeout ?? configuration.timeout
        let tls = configuration.tls

        var setupError: CURLcode = CURLE_OK
        func set(_ rc: CURLcode) { if setupError == CURLE_OK && rc != CURLE_OK { setupError = rc } }

        let started = ContinuousClock.now
        let rc: CURLcode = withExtendedLifetime((state, headerList)) {
            let statePointer = Unmanaged.passUnretained(state).toOpaque()
            set(switchover_curl_setopt_pointer(h, CURLOPT_ERRORBUFFER, easy.errorBuffer))
            // No SIGALRM for DNS timeouts: signals and threads do not mix.
            set(switchover_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1))
            set(switchover_curl_setopt_string(h, CURLOPT_URL, request.url))
            set(switchover_curl_setopt_string(h, CURLOPT_PROTOCOLS_STR, "http,https"))
            set(switchover_curl_setopt_string(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"))
            set(switchover_curl_setopt_long(h, CURLOPT_FOLLOWLOCATION, configuration.followRedirects ? 1 : 0))
            set(switchover_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, connectTimeout.curlMilliseconds))
            set(switchover_curl_setopt_long(h, CURLOPT_TIMEOUT_MS, timeout.curlMilliseconds))
            set(switchover_curl_setopt_string(h, CURLOPT_ACCEPT_ENCODING, ""))
            set(switchover_curl_setopt_slist(h, CURLOPT_HTTPHEADER, headerList.pointer))

            switch (method, request.body) {
            case ("GET", nil): set(switchover_curl_setopt_long(h, CURLOPT_HTTPGET, 1))
            case ("HEAD", nil): set(switchover_curl_setopt_long(h, CURLOPT_NOBODY, 1))
            case (_, let body):
                if method != "POST" { set(switchover_curl_setopt_string(h, CURLOPT_CUSTOMREQUEST, method)) }
                if method == "POST" || body != nil {
                    let bytes = body ?? Data()
                    set(switchover_curl_setopt_off_t(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(bytes.count)))
                    // COPYPOSTFIELDS copies the bytes, so nothing has to outlive this call.
                    bytes.withUnsafeBytes { raw in
                        if let base = raw.baseAddress, raw.count > 0 {
                            set(switchover_curl_setopt_pointer(h, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: base)))
                        } else {
                            set(switchover_curl_setopt_string(h, CURLOPT_COPYPOSTFIELDS, ""))
                        }
                    }
                }
            }

            set(switchover_curl_setopt_long(h, CURLOPT_SSL_VERIFYPEER, 1))
            set(switchover_curl_setopt_long(h, CURLOPT_SSL_VERIFYHOST, 2))
            // PEM held in memory goes as a blob, copied by curl (CURL_BLOB_COPY) during the call.
            func blob(_ option: CURLoption, _ pem: Data) {
                pem.withUnsafeBytes { raw in
                    var blob = curl_blob(data: UnsafeMutableRawPointer(mutating: raw.baseAddress), len: raw.count,
                                         flags: UInt32(CURL_BLOB_COPY))
                    set(withUnsafeMutablePointer(to: &blob) { switchover_curl_setopt_pointer(h, option, $0) })
                }
            }
            if let pem = tls.caPEM { blob(CURLOPT_CAINFO_BLOB, pem) } else if let ca = tls.caFile {
                set(switchover_curl_setopt_string(h, CURLOPT_CAINFO, ca))
            }
            if let pem = tls.clientCertificatePEM {
                blob(CURLOPT_SSLCERT_BLOB, pem)
                set(switchover_curl_setopt_string(h, CURLOPT_SSLCERTTYPE, "PEM"))
            } else if let cert = tls.clientCertificateFile {
                set(switchover_curl_setopt_string(h, CURLOPT_SSLCERT, cert))
                set(switchover_curl_setopt_string(h, CURLOPT_SSLCERTTYPE, "PEM"))
            }
            if let pem = tls.clientKeyPEM {
                blob(CURLOPT_SSLKEY_BLOB, pem)
                set(switchover_curl_setopt_string(h, CURLOPT_SSLKEYTYPE, "PEM"))
            } else if let key = tls.clientKeyFile {
                set(switchover_curl_setopt_string(h, CURLOPT_SSLKEY, key))
                set(switchover_curl_setopt_string(h, CURLOPT_SSLKEYTYPE, "PEM"))
            }

            set(switchover_curl_setopt_write_function(h, CURLOPT_WRITEFUNCTION) { data, size, count, user in
                let state = Unmanaged<TransferState>.fromOpaque(user!).takeUnretainedValue()
                let length = size * count
                guard state.body.count + length <= state.maxBytes else {
                    state.tooLarge = true
                    return 0  // curl aborts with CURLE_WRITE_ERROR
                }
                if let data, length > 0 { state.body.append(UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: length) }
                return length
            })
            set(switchover_curl_setopt_pointer(h, CURLOPT_WRITEDATA, statePointer))
            set(switchover_curl_setopt_write_function(h, CURLOPT_HEADERFUNCTION) { data, size, count, user in
                let state = Unmanaged<TransferState>.fromOpaque(user!).takeUnretainedValue()
                let length = size * count
                if let data {
                    let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: length)
                    state.addHeaderLine(String(decoding: bytes, as: UTF8.self))
                }
                return length
            })
            set(switchover_curl_setopt_pointer(h, CURLOPT_HEADERDATA, statePointer))
            set(switchover_curl_setopt_long(h, CURLOPT_NOPROGRESS, 0))
            set(switchover_curl_setopt_xferinfo_function(h, CURLOPT_XFERINFOFUNCTION) { user, _, _, _, _ in
                let state = Unmanaged<TransferState>.fromOpaque(user!).takeUnretainedValue()
                return state.cancellation.isCancelled ? 1 : 0  // non-zero aborts the transfer
            })
            set(switchover_curl_setopt_pointer(h, CURLOPT_XFERINFODATA, statePointer))

            guard setupError == CURLE_OK else { return setupError }
            if cancellation.isCancelled { return CURLE_ABORTED_BY_CALLBACK }
            return switchover_curl_easy_perform(h)
        }

        guard rc == CURLE_OK else {
            var osErrno = 0
            _ = switchover_curl_getinfo_long(h, CURLINFO_OS_ERRNO, &osErrno)
            let detail = easy.errorMessage
            let message = detail.isEmpty ? String(cString: switchover_curl_easy_strerror(rc)) : detail
            let code: HTTPError.Code = state.tooLarge ? .responseTooLarge
                : HTTPError.classify(rc, osErrno: osErrno == 0 ? nil : Int32(osErrno))
            let error = HTTPError(code: code, curlCode: Int(rc.rawValue),
                                  message: state.tooLarge ? "body exceeds \(configuration.maxResponseBytes) bytes" : message,
                                  url: request.shownURL ?? request.url, method: method, osErrno: osErrno == 0 ? nil : Int32(osErrno))
            logger.debug("http request failed", metadata: [
                "request": "\(request)", "error": "\(error.code)", "curl": "\(error.curlCode)",
                "ms": "\((ContinuousClock.now - started).curlMilliseconds)",
            ])
            throw error
        }

        var status = 0
        _ = switchover_curl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        var totalMicroseconds: curl_off_t = 0
        _ = switchover_curl_getinfo_off_t(h, CURLINFO_TOTAL_TIME_T, &totalMicroseconds)
        let response = HTTPResponse(status: status, headers: state.headers, body: state.body,
                                    totalTime: .microseconds(Int64(totalMicroseconds)))
        logger.trace("http request", metadata: [
            "request": "\(request)", "status": "\(status)", "bytes": "\(state.body.count)",
            "us": "\(totalMicroseconds)",
        ])
        return response
    }
}
