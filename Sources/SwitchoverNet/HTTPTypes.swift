import Foundation

/// One header line. Kept as an ordered list rather than a dictionary: HTTP allows a name to
/// repeat (Set-Cookie, Via) and order can matter.
public struct HTTPHeader: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    /// Values of headers that carry credentials are never printed.
    public var description: String {
        HTTPHeader.sensitiveNames.contains(name.lowercased()) ? "\(name): <redacted>" : "\(name): \(value)"
    }

    static let sensitiveNames: Set<String> = ["authorization", "proxy-authorization", "cookie", "set-cookie",
                                              "x-api-key", "x-auth-token", "x-amz-security-token"]
}

/// What to send. Timeouts left `nil` take the client's defaults.
public struct HTTPRequest: Sendable, CustomStringConvertible {
    /// Any method: GET, HEAD, POST, PUT, DELETE, ... (upper-cased before sending).
    public var method: String
    public var url: String
    public var headers: [HTTPHeader]
    /// The request body. Without a Content-Type header curl labels a body
    /// `application/x-www-form-urlencoded`; set one for JSON.
    public var body: Data?
    /// Time allowed to establish the TCP connection (and TLS handshake).
    public var connectTimeout: Duration?
    /// Time allowed for the whole exchange, connect included.
    public var timeout: Duration?
    /// How the URL is shown in logs and errors, when even its path is a secret (a Slack incoming
    /// webhook's is); nil: the URL with its credentials redacted.
    public var shownURL: String?

    public init(method: String = "GET", url: String, headers: [HTTPHeader] = [], body: Data? = nil,
                connectTimeout: Duration? = nil, timeout: Duration? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.connectTimeout = connectTimeout
        self.timeout = timeout
    }

    /// Method and URL only: headers may carry secrets and bodies may be large.
    public var description: String { "\(method.uppercased()) \(shownURL ?? HTTPError.redactingCredentials(url))" }
}

/// A complete response, whatever its status: a 503 is an answer, not an error.
public struct HTTPResponse: Sendable {
    public let status: Int
    /// The headers of the final response, in order (those of a `100 Continue` are dropped).
    public let headers: [HTTPHeader]
    public let body: Data
    /// From the start of the request to the last byte received (CURLINFO_TOTAL_TIME_T).
    public let totalTime: Duration

    public init(status: Int, headers: [HTTPHeader], body: Data, totalTime: Duration) {
        self.status = status
        self.headers = headers
        self.body = body
        self.totalTime = totalTime
    }

    /// The first header named `name`, compared without regard to case.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }

    /// The body as UTF-8, invalid bytes replaced.
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// Whom to trust and who we are. Verification of the server's certificate and host name is
/// always on: there is deliberately no switch to turn it off, because a load-balancer admin
/// endpoint reached without verification is an open door for whoever sits on the path.
public struct TLSConfiguration: Sendable, Hashable {
    /// PEM file of CA certificates to trust; `nil` trusts the system store.
    public var caFile: String?
    /// PEM client certificate (and chain) for mutual TLS.
    public var clientCertificateFile: String?
    /// PEM private key of `clientCertificateFile`.
    public var clientKeyFile: String?

    /// The same three as PEM bytes held in memory (a kubeconfig's `*-data` fields), given to
    /// libcurl as blobs: a key never written to a file. Each, when set, is used instead of its file.
    public var caPEM: Data?
    public var clientCertificatePEM: Data?
    public var clientKeyPEM: Data?

    public init(caFile: String? = nil, clientCertificateFile: String? = nil, clientKeyFile: String? = nil,
                caPEM: Data? = nil, clientCertificatePEM: Data? = nil, clientKeyPEM: Data? = nil) {
        self.caFile = caFile
        self.clientCertificateFile = clientCertificateFile
        self.clientKeyFile = clientKeyFile
        self.caPEM = caPEM
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
    }

    /// The system trust store, no client certificate.
    public static let systemTrust = TLSConfiguration()
}

extension Duration {
    /// Whole milliseconds, rounded up, at least 1: curl reads 0 as "no timeout", which must
    /// never happen by rounding a small duration down.
    var curlMilliseconds: Int {
        let (seconds, attoseconds) = components
        let perMillisecond: Int64 = 1_000_000_000_000_000
        var ms = seconds * 1000 + attoseconds / perMillisecond
        if attoseconds % perMillisecond > 0 { ms += 1 }
        return Int(max(1, ms))
    }
}
