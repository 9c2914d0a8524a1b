import CCurl
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed HTTP exchange: what curl said (its code and message), and which request it was.
///
/// A response with status 500 is NOT an error: the client returns every response it receives
/// and the caller judges the status. This error means no complete response arrived.
///
/// `code` sorts failures into what callers act on (refused, timed out, certificate did not
/// verify, ...); `curlCode` and `message` keep curl's exact words for the operator.
public struct HTTPError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this was. Compare with the static constants (`.timeout`, ...).
    /// A struct over a private enum, so new kinds can be added without breaking callers'
    /// exhaustive switches.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case badURL, invalidRequest, couldNotResolveHost, connectionRefused, couldNotConnect, timeout
            case tlsVerificationFailed, tlsHandshakeFailed, tlsConfiguration
            case sendFailed, receiveFailed, responseTooLarge, other
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The URL is malformed or uses a scheme other than http/https.
        public static let badURL = Code(.badURL)
        /// The request itself is unusable (a header with a line break, an empty method, ...);
        /// nothing was sent.
        public static let invalidRequest = Code(.invalidRequest)
        /// The host name did not resolve.
        public static let couldNotResolveHost = Code(.couldNotResolveHost)
        /// Nothing listens on the port (the peer answered the connect with a reset: ECONNREFUSED).
        public static let connectionRefused = Code(.connectionRefused)
        /// The connect failed for another reason (unreachable network, ...).
        public static let couldNotConnect = Code(.couldNotConnect)
        /// The connect timeout or the total timeout expired.
        public static let timeout = Code(.timeout)
        /// The server's certificate did not verify against the trusted CAs, or did not match the
        /// host name (CURLE_PEER_FAILED_VERIFICATION).
        public static let tlsVerificationFailed = Code(.tlsVerificationFailed)
        /// The TLS handshake failed (protocol mismatch, the server refused our client
        /// certificate or wanted one we did not send, ...).
        public static let tlsHandshakeFailed = Code(.tlsHandshakeFailed)
        /// Our own TLS material could not be used: unreadable CA file, client certificate or key.
        public static let tlsConfiguration = Code(.tlsConfiguration)
        /// Sending the request failed (the peer closed the connection, ...).
        public static let sendFailed = Code(.sendFailed)
        /// Receiving the response failed; a server that rejects our client certificate after a
        /// TLS 1.3 handshake shows up here, with curl's message naming the TLS alert.
        public static let receiveFailed = Code(.receiveFailed)
        /// The body exceeded the client's `maxResponseBytes`.
        public static let responseTooLarge = Code(.responseTooLarge)
        /// Anything else; `curlCode` and `message` say what.
        public static let other = Code(.other)

        public var description: String {
            switch base {
            case .badURL: "bad URL"
            case .invalidRequest: "invalid request"
            case .couldNotResolveHost: "could not resolve host"
            case .connectionRefused: "connection refused"
            case .couldNotConnect: "could not connect"
            case .timeout: "timed out"
            case .tlsVerificationFailed: "TLS verification failed"
            case .tlsHandshakeFailed: "TLS handshake failed"
            case .tlsConfiguration: "TLS configuration error"
            case .sendFailed: "send failed"
            case .receiveFailed: "receive failed"
            case .responseTooLarge: "response too large"
            case .other: "HTTP request failed"
            }
        }
    }

    public let code: Code
    /// curl's CURLcode (`CURLE_*`), as its raw number.
    public let curlCode: Int
    /// curl's detailed message (its error buffer) or, when empty, `curl_easy_strerror`.
    public let message: String
    /// The request URL, with any user:password removed.
    public let url: String
    public let method: String
    /// The OS errno of the failed connect, when curl reports one (ECONNREFUSED, ...).
    public let osErrno: Int32?

    public init(code: Code, curlCode: Int, message: String, url: String, method: String, osErrno: Int32? = nil) {
        self.code = code
        self.curlCode = curlCode
        self.message = message
        self.url = HTTPError.redactingCredentials(url)
        self.method = method
        self.osErrno = osErrno
    }

    public var description: String {
        "\(method) \(url): \(code) (curl \(curlCode): \(message))"
    }

    /// Sorts a curl result into a `Code`. Connection refused is told apart from other connect
    /// failures by the OS errno, because curl reports both as CURLE_COULDNT_CONNECT.
    static func classify(_ rc: CURLcode, osErrno: Int32?) -> Code {
        switch rc {
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL: return .badURL
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: return .couldNotResolveHost
        case CURLE_COULDNT_CONNECT: return osErrno == ECONNREFUSED ? .connectionRefused : .couldNotConnect
        case CURLE_OPERATION_TIMEDOUT: return .timeout
        case CURLE_PEER_FAILED_VERIFICATION: return .tlsVerificationFailed
        case CURLE_SSL_CONNECT_ERROR: return .tlsHandshakeFailed
        case CURLE_SSL_CERTPROBLEM, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CIPHER, CURLE_SSL_ENGINE_NOTFOUND,
             CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ISSUER_ERROR:
            return .tlsConfiguration
        case CURLE_SEND_ERROR: return .sendFailed
        case CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE: return .receiveFailed
        default: return .other
        }
    }

    /// `http://user:secret@host/?token=abc&x=1` → `http://host/?token=<redacted>&x=1`: URLs end
    /// up in logs, the journal, `status` and the report. Public so every module that prints a
    /// configured URL (Prometheus gates, preflight's health checks, ...) uses this one rule.
    ///
    /// The user-info goes whole; a query parameter keeps its name and loses its value when the
    /// name looks like a credential (`credentialParameterWords`, case and `-`/`_` ignored):
    /// Prometheus behind a proxy is often reached as `...?token=...` or `...?api_key=...`.
    /// Text rather than `URLComponents`, so a URL too broken to parse is still redacted.
    public static func redactingCredentials(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url }
        var rest = url[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        if let at = rest[..<authorityEnd].lastIndex(of: "@") {
            rest = rest[rest.index(after: at)...]
        }
        let prefix = String(url[..<schemeEnd.upperBound])
        guard let question = rest.firstIndex(of: "?") else { return prefix + rest }
        let queryStart = rest.index(after: question)
        let queryEnd = rest[queryStart...].firstIndex(of: "#") ?? rest.endIndex
        let parameters = rest[queryStart..<queryEnd].split(separator: "&", omittingEmptySubsequences: false).map { parameter in
            guard let equals = parameter.firstIndex(of: "="), isCredentialParameter(parameter[..<equals]) else {
                return String(parameter)
            }
            return parameter[...equals] + "<redacted>"
        }
        return prefix + rest[..<queryStart] + parameters.joined(separator: "&") + rest[queryEnd...]
    }

    /// A query parameter whose name contains one of these (lowercased, without `-` and `_`)
    /// is taken for a credential: `token`, `access_token`, `X-Amz-Security-Token`, `key`,
    /// `apikey`, `api_key`, `password`, `secret`, `client_secret`, `signature`, `auth`, ...
    static let credentialParameterWords = ["token", "key", "passw", "pwd", "secret", "signature", "auth", "credential", "session"]
    /// ... or is exactly one of these short names (`sig`: Azure SAS signatures).
    static let credentialParameterNames: Set<String> = ["sig", "pw", "pass", "jwt"]

    static func isCredentialParameter(_ name: Substring) -> Bool {
        let decoded = name.removingPercentEncoding ?? String(name)
        let folded = decoded.lowercased().filter { $0 != "-" && $0 != "_" }
        return credentialParameterNames.contains(folded) || credentialParameterWords.contains { folded.contains($0) }
    }
}

