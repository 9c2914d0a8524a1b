import COpenSSL
import Foundation
import SwitchoverCore
#if canImport(Glibc)
import Glibc
#endif

/// How the live probe connects.
public struct ProbeOptions: Sendable, Hashable {
    /// For connect and handshake together; a probe never takes longer than this.
    public var timeout: Duration
    /// A client certificate chain (PEM) and its key, for endpoints that require mTLS (Istio's
    /// do). Optional: a plain TLS endpoint still shows its chain without one.
    public var clientCertificate: String?
    public var clientKey: String?

    public init(timeout: Duration = .seconds(5), clientCertificate: String? = nil, clientKey: String? = nil) {
        self.timeout = timeout
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
    }

    /// Input errors in the options, before anything runs.
    func validate() throws {
        if (clientCertificate == nil) != (clientKey == nil) {
            throw TrustError(.badProbeClient, file: clientCertificate ?? clientKey,
                             detail: "a probe client certificate needs both a certificate and a key")
        }
        for path in [clientCertificate, clientKey].compactMap({ $0 }) where !FileManager.default.fileExists(atPath: path) {
            throw TrustError(.missingFile, file: path, detail: "no such file (probe client certificate/key)")
        }
    }
}

/// A parsed `host:port` (or `[v6]:port`).
struct ProbeEndpoint {
    var host: String
    var port: UInt16

    init(_ text: String, cluster: String) throws {
        var host = Substring(text)
        var portText: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[close...].dropFirst()
            guard portText.first == ":" else {
                throw TrustError(.badProbeAddress, file: cluster, detail: "spec.trust.probe '\(text)' is not host:port")
            }
            portText = portText.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw TrustError(.badProbeAddress, file: cluster, detail: "spec.trust.probe '\(text)' is not host:port")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let port = UInt16(portText), port > 0 else {
            throw TrustError(.badProbeAddress, file: cluster, detail: "spec.trust.probe '\(text)' is not host:port with a port 1-65535")
        }
        self.host = String(host)
        self.port = port
    }
}

/// The live probe: a TLS handshake to a cluster's probe endpoint, verifying the presented chain
/// against the **other** cluster's roots, as the other cluster's sidecars would.
enum TLSProbe {
    struct Seen { var cluster: String; var summary: ProbeSummary }

    /// Never throws and never hangs: every failure, including a bad client key, is a `fail`
    /// check; connect and handshake share `options.timeout`.
    static func probe(_ side: ClusterTrustMaterial, verifiedBy other: ClusterTrustMaterial, options: ProbeOptions,
                      now: Date) async -> (TrustCheck, Seen?) {
        let name = "probe.\(side.name)"
        guard let address = side.spec.probe else {
            return (TrustCheck(name: name, status: .warn, detail: "\(side.name) has no spec.trust.probe endpoint: not probed"), nil)
        }
        return await withCheckedContinuation { continuation in
            // Blocking socket I/O stays off Swift's cooperative pool.
            DispatchQueue.global().async {
                continuation.resume(returning: run(name: name, address: address, side: side, other: other, options: options, now: now))
            }
        }
    }

    private static func run(name: String, address: String, side: ClusterTrustMaterial, other: ClusterTrustMaterial,
                            options: ProbeOptions, now: Date) -> (TrustCheck, Seen?) {
        func fail(_ detail: String, _ seen: Seen? = nil) -> (TrustCheck, Seen?) {
            (TrustCheck(name: name, status: .fail, detail: "\(address): \(detail)"), seen)
        }
        defer { ERR_clear_error() }
        do {
            let endpoint = try ProbeEndpoint(address, cluster: side.name)
            let deadline = ContinuousClock.now + options.timeout
            let socket: Socket
            switch Socket.connect(endpoint, deadline: deadline) {
            case .success(let connected): socket = connected
            case .failure(let reason): return fail(reason.message)
            }
            let context = try SSLContext()
            _ = switchover_SSL_CTX_set_min_proto_version(context.pointer, TLS1_2_VERSION)
            // The other cluster's roots are the only trust anchors: the system store is never loaded.
            let store = SSL_CTX_get_cert_store(context.pointer)
            for root in other.roots.certificates { _ = X509_STORE_add_cert(store, root.pointer) }
            X509_STORE_set_flags(store, ChainVerifier.flags)
            ERR_clear_error()
            // VERIFY_NONE: the handshake completes so that we can say *why* the chain fails
            // (OpenSSL still verifies and records the result for SSL_get_verify_result).
            SSL_CTX_set_verify(context.pointer, SSL_VERIFY_NONE, nil)
            if let certificate = options.clientCertificate, let key = options.clientKey {
                guard SSL_CTX_use_certificate_chain_file(context.pointer, certificate) == 1,
                      SSL_CTX_use_PrivateKey_file(context.pointer, key, SSL_FILETYPE_PEM) == 1,
                      SSL_CTX_check_private_key(context.pointer) == 1 else {
                    return fail("cannot use the probe client certificate \(certificate) with its key: \(OpenSSLErrorStack.drain())")
                }
            }
            let connection = try SSLConnection(context: context)
            var literal = in6_addr()
            if inet_pton(AF_INET, endpoint.host, &literal) != 1, inet_pton(AF_INET6, endpoint.host, &literal) != 1 {
                _ = switchover_SSL_set_tlsext_host_name(connection.pointer, endpoint.host)
            }
            SSL_set_fd(connection.pointer, socket.fd)
            socket.setTimeouts(until: deadline)
            let result = SSL_connect(connection.pointer)
            if result != 1 {
                let code = SSL_get_error(connection.pointer, result)
                let savedErrno = errno
                let errors = OpenSSLErrorStack.drain()
                // A read timeout (SO_RCVTIMEO) surfaces as WANT_READ: the socket BIO treats EAGAIN as "retry".
                if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE
                    || (code == SSL_ERROR_SYSCALL && (savedErrno == EAGAIN || savedErrno == EWOULDBLOCK)) {
                    return fail("timed out after \(TrustChecks.format(options.timeout)) waiting for the TLS handshake (the port accepts TCP but does not answer TLS)")
                }
                if code == SSL_ERROR_SYSCALL && errors.errors.isEmpty {
                    return fail("the connection closed during the TLS handshake\(savedErrno != 0 ? " (\(String(cString: strerror(savedErrno))))" : "")")
                }
                return fail("TLS handshake failed: \(errors.errors.isEmpty ? "SSL error \(code)" : errors.description)")
            }
            defer { _ = SSL_shutdown(connection.pointer) }
            guard let leafPointer = SSL_get1_peer_certificate(connection.pointer) else {
                return fail("the server presented no certificate")
            }
            let leaf = try Certificate(taking: leafPointer)
            let identity = leaf.uriSANs.first { $0.hasPrefix("spiffe://") }
            let seen = Seen(cluster: side.name, summary: ProbeSummary(endpoint: address, identity: identity, leaf: CertificateSummary(leaf)))
            let verify = SSL_get_verify_result(connection.pointer)
            if verify != X509_V_OK {
                let reason = X509_verify_cert_error_string(verify).map { String(cString: $0) } ?? "error \(verify)"
                return fail("presented chain (leaf \(leaf.subject)) does not verify against \(other.name)'s roots: \(reason)", seen)
            }
            guard let identity else {
                return fail("leaf \(leaf.subject) has no SPIFFE URI SAN (spiffe://<trust domain>/ns/<ns>/sa/<sa>)", seen)
            }
            guard let spiffe = SPIFFEID(identity) else {
                return fail("leaf URI SAN \(identity) is not spiffe://<trust domain>/ns/<ns>/sa/<sa>", seen)
            }
            if spiffe.trustDomain != other.spec.trustDomain || spiffe.trustDomain != side.spec.trustDomain {
                return fail("leaf identity \(identity) has trust domain \(spiffe.trustDomain); \(side.name) is \(side.spec.trustDomain), \(other.name) accepts \(other.spec.trustDomain)", seen)
            }
            return (TrustCheck(name: name, status: .pass,
                               detail: "\(address) presented \(identity), verified against \(other.name)'s roots, leaf expires \(TrustChecks.day(leaf.notAfter))"), seen)
        } catch {
            return fail("\(error)")
        }
    }
}

/// `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`, Istio's workload identity.
struct SPIFFEID {
    var trustDomain: String
    var namespace: String
    var serviceAccount: String

    init?(_ uri: String) {
        guard uri.hasPrefix("spiffe://") else { return nil }
        let parts = uri.dropFirst("spiffe://".count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 5, !parts[0].isEmpty, parts[1] == "ns", !parts[2].isEmpty, parts[3] == "sa", !parts[4].isEmpty else {
            return nil
        }
        trustDomain = String(parts[0])
        namespace = String(parts[2])
        serviceAccount = String(parts[4])
    }
}

/// A connected TCP socket, closed in deinit.
final class Socket {
    let fd: Int32
    private init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    struct Failure: Error { var message: String }

    /// Non-blocking connect with poll, so that a black-holed address fails at the deadline
    /// instead of after the kernel's minutes-long SYN retries.
    static func connect(_ endpoint: ProbeEndpoint, deadline: ContinuousClock.Instant) -> Result<Socket, Failure> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(endpoint.host, String(endpoint.port), &hints, &list)
        guard status == 0, let first = list else {
            return .failure(Failure(message: "cannot resolve \(endpoint.host): \(String(cString: gai_strerror(status)))"))
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            cursor = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            guard fd >= 0 else { lastError = String(cString: strerror(errno)); continue }
            let socket = Socket(fd: fd)
            // SIGPIPE would kill the process if the peer closes while OpenSSL writes; the probe
            // sets MSG_NOSIGNAL semantics the only portable way it can: per process.
            signal(SIGPIPE, SIG_IGN)
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            let started = Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen)
            if started != 0 && errno != EINPROGRESS {
                lastError = describe(errno)
                continue
            }
            if started != 0 {
                var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ready = poll(&poller, 1, milliseconds(until: deadline))
                if ready == 0 { return .failure(Failure(message: "timed out connecting")) }
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                if ready < 0 || error != 0 {
                    lastError = describe(ready < 0 ? errno : error)
                    continue
                }
            }
            _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
            return .success(socket)
        }
        return .failure(Failure(message: lastError))
    }

    /// SO_RCVTIMEO/SO_SNDTIMEO for what is left until `deadline`: OpenSSL's blocking reads
    /// then fail with EAGAIN instead of waiting for ever on a server that never answers.
    func setTimeouts(until deadline: ContinuousClock.Instant) {
        let ms = max(Socket.milliseconds(until: deadline), 1)
        var value = timeval(tv_sec: Int(ms / 1000), tv_usec: Int(ms % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    static func milliseconds(until deadline: ContinuousClock.Instant) -> Int32 {
        let left = ContinuousClock.now.duration(to: deadline)
        return Int32(max(0, min(Double(Int32.max), left.seconds * 1000)))
    }

    private static func describe(_ code: Int32) -> String {
        code == ECONNREFUSED ? "connection refused (nothing listens there)" : String(cString: strerror(code))
    }
}
