import Foundation
import SwitchoverNet
import SwitchoverTrust
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One AWS API request before it is signed: the method, where it goes, and what it carries.
///
/// `path` is the path as sent on the wire, already percent-encoded where a segment needs it
/// (`AWSRequest.encode(segment:)`); the signer derives the canonical URI from it. `query` holds
/// names and values as they are, unencoded: the request encodes them (RFC 3986) and sorts them
/// once, the same way for the URL it sends and the canonical query string it signs.
public struct AWSRequest: Sendable {
    public var method: String
    /// `scheme://host[:port]`, no path: `https://route53.amazonaws.com`, `http://127.0.0.1:5000`.
    public var endpoint: String
    public var path: String
    public var query: [(name: String, value: String)]
    /// Extra headers, all of them signed (except those SigV4 never signs: `user-agent`, `expect`,
    /// hop-by-hop headers, ...). `host`, `x-amz-date` and, with a session token,
    /// `x-amz-security-token` are added by the signer.
    public var headers: [HTTPHeader]
    public var body: Data

    public init(method: String, endpoint: String, path: String = "/", query: [(name: String, value: String)] = [],
                headers: [HTTPHeader] = [], body: Data = Data()) {
        self.method = method
        self.endpoint = endpoint
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }

    /// The query string as sent and as signed: every name and value RFC 3986-encoded, pairs
    /// sorted by encoded name, then encoded value.
    public var encodedQuery: String {
        query.map { (SigV4Signer.encode($0.name), SigV4Signer.encode($0.value)) }
            .sorted { a, b in
                a.0 != b.0 ? a.0.utf8.lexicographicallyPrecedes(b.0.utf8) : a.1.utf8.lexicographicallyPrecedes(b.1.utf8)
            }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// The full URL: endpoint, path, sorted and encoded query.
    public var url: String {
        let query = encodedQuery
        return endpoint + (path.isEmpty ? "/" : path) + (query.isEmpty ? "" : "?" + query)
    }

    /// A path segment as AWS services expect it in a URL: every byte but the unreserved
    /// characters (`A-Z a-z 0-9 - . _ ~`) percent-encoded.
    public static func encode(segment: String) -> String { SigV4Signer.encode(segment) }
}

/// AWS Signature Version 4 (the "AWS4-HMAC-SHA256" Authorization header), for any service and
/// region, with the hashes and HMACs computed by OpenSSL (`Digest`).
///
/// What it signs, step by step (names as in AWS's documentation):
/// 1. the **canonical request**: method; canonical URI; canonical query string; canonical
///    headers (names lowercased, values trimmed with inner runs of blanks made one space, sorted
///    by name, repeated names joined by commas); the signed header names; the hex SHA-256 of the
///    payload (of the empty string for a GET);
/// 2. the **string to sign**: `AWS4-HMAC-SHA256`, the timestamp, the credential scope
///    `yyyymmdd/region/service/aws4_request`, the hex SHA-256 of the canonical request;
/// 3. the **signing key**: HMAC chain `"AWS4"+secret` → date → region → service → `aws4_request`;
/// 4. the **signature**: hex HMAC of the string to sign under the signing key.
///
/// Where services differ (`Rules`): every service but S3 takes the canonical URI as the path
/// with dot segments and repeated slashes removed and then URI-encoded *again* (a `%` in the
/// path becomes `%25`), while S3 takes the path exactly as sent and wants the payload hash in an
/// `x-amz-content-sha256` header too. These are botocore's rules (`SigV4Auth`, `S3SigV4Auth`),
/// and the tests compare every signature with botocore's, byte for byte.
///
/// Pure and deterministic: the time is a parameter, so tests sign at a fixed instant.
public struct SigV4Signer: Sendable {
    /// How a service wants its requests canonicalized.
    public struct Rules: Sendable, Hashable {
        /// Remove `.`/`..` segments and repeated slashes, then URI-encode the path again
        /// (everything but S3). Off: the path as sent (S3).
        public var normalizesAndEncodesPath: Bool
        /// Send and sign `x-amz-content-sha256: <payload hash>` (S3 requires it).
        public var sendsContentSHA256: Bool

        public init(normalizesAndEncodesPath: Bool, sendsContentSHA256: Bool) {
            self.normalizesAndEncodesPath = normalizesAndEncodesPath
            self.sendsContentSHA256 = sendsContentSHA256
        }

        /// Route53, ELBv2, STS, EC2 and every other service but S3.
        public static let standard = Rules(normalizesAndEncodesPath: true, sendsContentSHA256: false)
        /// S3 (virtual-hosted or path-style; payload always signed, never `UNSIGNED-PAYLOAD`).
        public static let s3 = Rules(normalizesAndEncodesPath: false, sendsContentSHA256: true)
    }

    /// The signing name of the service: `route53`, `elasticloadbalancing`, `sts`, `s3`, ...
    public let service: String
    /// The signing region: `us-east-1` for Route53 (a global service), the load balancer's for ELBv2.
    public let region: String
    public let rules: Rules

    /// `rules` defaults to `.s3` for the service `s3` and `.standard` for every other.
    public init(service: String, region: String, rules: Rules? = nil) {
        self.service = service
        self.region = region
        self.rules = rules ?? (service == "s3" ? .s3 : .standard)
    }

    /// The outcome of signing: the headers to send, and every intermediate string (for tests and
    /// for debugging a `SignatureDoesNotMatch`). None holds the secret, but the canonical request
    /// holds the session token when there is one, and the signature is good for minutes: the
    /// description and the mirror show only the date and the signed header names.
    public struct Signature: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
        /// `x-amz-date`, then `x-amz-security-token` (with a token), `x-amz-content-sha256` (S3),
        /// and `Authorization`; `Host` is not among them (the request's endpoint gives it).
        public let headers: [HTTPHeader]
        public let authorization: String
        public let amzDate: String
        public let canonicalRequest: String
        public let stringToSign: String
        public let signedHeaders: String
        public let signature: String

        public var description: String { "SigV4 signature at \(amzDate) over \(signedHeaders)" }
        public var debugDescription: String { description }
        public var customMirror: Mirror {
            Mirror(self, children: ["amzDate": amzDate, "signedHeaders": signedHeaders], displayStyle: .struct)
        }
    }

    /// Signs `request` as of `date` with `credentials`.
    public func sign(_ request: AWSRequest, credentials: AWSCredentials, at date: Date) throws(AWSError) -> Signature {
        let host = try Self.hostHeader(of: request.endpoint)
        let (amzDate, day) = Self.timestamp(date)
        let payloadHash = OpenSSLDigest.hex(OpenSSLDigest.sha256(request.body))

        // The headers as sent: the request's own (less those SigV4 never signs and the ones the
        // signer sets), then host, the date, the token and the payload hash.
        var replaced: Set<String> = ["authorization", "x-amz-date", "x-amz-security-token"]
        if rules.sendsContentSHA256 { replaced.insert("x-amz-content-sha256") }
        var added: [HTTPHeader] = [HTTPHeader("X-Amz-Date", amzDate)]
        if let token = credentials.sessionToken { added.append(HTTPHeader("X-Amz-Security-Token", token.reveal)) }
        if rules.sendsContentSHA256 { added.append(HTTPHeader("X-Amz-Content-SHA256", payloadHash)) }
        var signedValues: [String: [String]] = [:]
        for header in request.headers where !replaced.contains(header.name.lowercased()) {
            let name = header.name.lowercased()
            if Self.unsignedHeaders.contains(name) { continue }
            signedValues[name, default: []].append(Self.trimAll(header.value))
        }
        if signedValues["host"] == nil { signedValues["host"] = [host] }
        for header in added { signedValues[header.name.lowercased(), default: []].append(Self.trimAll(header.value)) }
        let names = signedValues.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let canonicalHeaders = names.map { "\($0):\(signedValues[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")

        let canonicalRequest = [
            request.method.uppercased(),
            canonicalURI(request.path),
            request.encodedQuery,
            canonicalHeaders,
            signedHeaders,
            payloadHash,
        ].joined(separator: "\n")

        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = [
            "AWS4-HMAC-SHA256", amzDate, scope, OpenSSLDigest.hex(OpenSSLDigest.sha256(Array(canonicalRequest.utf8))),
        ].joined(separator: "\n")

        let signingKey = [day, region, service, "aws4_request"].reduce(Array("AWS4\(credentials.secretAccessKey.reveal)".utf8)) {
            OpenSSLDigest.hmacSHA256(key: $0, message: Array($1.utf8))
        }
        let signature = OpenSSLDigest.hex(OpenSSLDigest.hmacSHA256(key: signingKey, message: Array(stringToSign.utf8)))
        let authorization = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyId)/\(scope), "
            + "SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return Signature(headers: added + [HTTPHeader("Authorization", authorization)], authorization: authorization,
                         amzDate: amzDate, canonicalRequest: canonicalRequest, stringToSign: stringToSign,
                         signedHeaders: signedHeaders, signature: signature)
    }

    /// Headers SigV4 leaves out of the signature (botocore's list): a proxy may add, drop or
    /// change them on the way.
    static let unsignedHeaders: Set<String> = [
        "baggage", "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "traceparent", "tracestate", "trailer", "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id",
    ]

    /// The canonical URI of `path` under this service's rules.
    func canonicalURI(_ path: String) -> String {
        let path = path.isEmpty ? "/" : path
        guard rules.normalizesAndEncodesPath else { return path }
        return Self.encode(Self.removingDotSegments(path), keepingSlashes: true)
    }

    /// RFC 3986's dot-segment removal, with empty segments (repeated slashes) dropped too, as AWS
    /// services want; a leading and a trailing slash are kept.
    static func removingDotSegments(_ path: String) -> String {
        var segments: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) where segment != "." {
            if segment == ".." {
                if !segments.isEmpty { segments.removeLast() }
            } else {
                segments.append(segment)
            }
        }
        let first = path.hasPrefix("/") ? "/" : ""
        let last = path.hasSuffix("/") && !segments.isEmpty ? "/" : ""
        return first + segments.joined(separator: "/") + last
    }

    /// RFC 3986 percent-encoding of UTF-8 bytes: only `A-Z a-z 0-9 - . _ ~` (and `/` when
    /// `keepingSlashes`) stay as they are; hex digits upper-case.
    static func encode(_ text: String, keepingSlashes: Bool = false) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out = [UInt8]()
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: "/") where keepingSlashes:
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0f)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A header value with blanks trimmed at both ends and each inner run of blanks made one
    /// space (SigV4's "Trimall"; ASCII whitespace, as Python's `str.split()` finds it in ASCII).
    static func trimAll(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\u{0B}" || $0 == "\u{0C}" })
            .joined(separator: " ")
    }

    /// `Host` as it is sent and signed: the endpoint's host lower-cased, with its port unless it
    /// is the scheme's default (80, 443); an IPv6 address in brackets.
    static func hostHeader(of endpoint: String) throws(AWSError) -> String {
        guard let components = URLComponents(string: endpoint), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", var host = components.host, !host.isEmpty else {
            throw AWSError(.invalidRequest, "endpoint '\(endpoint)' is not an http(s)://host[:port] URL")
        }
        host = host.lowercased()
        if host.contains(":") && !host.hasPrefix("[") { host = "[\(host)]" }
        if let port = components.port, port != (scheme == "https" ? 443 : 80) { host += ":\(port)" }
        return host
    }

    /// `yyyyMMdd'T'HHmmss'Z'` and `yyyyMMdd` in UTC, whole seconds (the fraction dropped, as
    /// botocore's `strftime` does).
    static func timestamp(_ date: Date) -> (amzDate: String, day: String) {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let day = "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))"
        return ("\(day)T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z", day)
    }
}
