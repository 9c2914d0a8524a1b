import Foundation
import Logging
import SwitchoverCore
import SwitchoverNet

/// Runs PromQL instant queries over HTTP (`GET <url>/api/v1/query?query=...`) and reads the
/// sample values of a `vector` or `scalar` result.
///
/// Timeouts are short on purpose (1 s to connect, 2 s in all by default): a Prometheus that
/// does not answer must cost one gate interval at most, and the caller turns the failure into an
/// `error` outcome, never a `fail`.
public struct PrometheusQuerying: Sendable {
    public let client: HTTPClient
    public var connectTimeout: Duration
    public var timeout: Duration

    public init(client: HTTPClient, connectTimeout: Duration = .seconds(1), timeout: Duration = .seconds(2)) {
        self.client = client
        self.connectTimeout = connectTimeout
        self.timeout = timeout
    }

    /// The query URL: `base`'s path without trailing slashes, then `/api/v1/query`; `base`'s own
    /// query parameters kept (a proxy in front of Prometheus may want `?token=...`), then
    /// `query=` and the query percent-encoded (everything but unreserved characters, so `+`, `&`,
    /// `=`, `{`, `"` and spaces survive the trip). Built with `URLComponents`, not by appending
    /// text: `http://host:9090?token=X` once became `http://host:9090?token=X/api/v1/query?...`,
    /// which Prometheus answered with a redirect to its UI.
    public static func queryURL(base: URL, query: String) -> String {
        // ASCII letters and digits only: `CharacterSet.alphanumerics` would let non-ASCII letters through.
        let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
        let encoded = query.addingPercentEncoding(withAllowedCharacters: unreserved) ?? query
        guard var components = URLComponents(url: base, resolvingAgainstBaseURL: false) else {
            // Not reached for a URL the loader accepted (http(s) with a host).
            var root = base.absoluteString
            while root.hasSuffix("/") { root.removeLast() }
            return "\(root)/api/v1/query?query=\(encoded)"
        }
        var path = components.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        components.percentEncodedPath = path + "/api/v1/query"
        // The gate's query is the query: a `query=` in the base would be a second one.
        var items = (components.percentEncodedQueryItems ?? []).filter { $0.name != "query" }
        items.append(URLQueryItem(name: "query", value: encoded))
        components.percentEncodedQueryItems = items
        components.percentEncodedFragment = nil
        return components.string ?? "\(base.absoluteString)/api/v1/query?query=\(encoded)"
    }

    /// The sample values the query returned (empty for an empty vector), or a `PrometheusError`.
    public func query(base: URL, _ query: String) async throws(PrometheusError) -> [Double] {
        let url = Self.queryURL(base: base, query: query)
        let response: HTTPResponse
        do {
            response = try await client.execute(HTTPRequest(method: "GET", url: url, connectTimeout: connectTimeout,
                                                            timeout: timeout))
        } catch let error as HTTPError {
            throw PrometheusError(.unreachable, base: base, detail: "\(error)")
        } catch {
            throw PrometheusError(.unreachable, base: base, detail: "\(error)")
        }
        return try Self.parse(status: response.status, body: response.body, base: base)
    }

    /// Reads an `/api/v1/query` answer. Prometheus answers errors (a bad query, a timeout of its
    /// own) with a 4xx/5xx and `{"status":"error","errorType":...,"error":...}`; both the status
    /// code and the body are checked, so neither alone can pass for a result.
    public static func parse(status: Int, body: Data, base: URL) throws(PrometheusError) -> [Double] {
        let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any]
        if let object, object["status"] as? String == "error" {
            let type = object["errorType"] as? String ?? "error"
            let message = object["error"] as? String ?? "no message"
            throw PrometheusError(.queryFailed, base: base, detail: "HTTP \(status), \(type): \(message)")
        }
        guard (200..<300).contains(status) else {
            let text = String(decoding: body.prefix(200), as: UTF8.self)
            throw PrometheusError(.httpStatus, base: base, detail: "HTTP \(status): \(text)")
        }
        guard let object, object["status"] as? String == "success", let data = object["data"] as? [String: Any],
              let type = data["resultType"] as? String else {
            throw PrometheusError(.badResponse, base: base, detail: "not a Prometheus query answer: "
                                  + String(decoding: body.prefix(200), as: UTF8.self))
        }
        switch type {
        case "scalar":
            guard let pair = data["result"] as? [Any], pair.count == 2 else {
                throw PrometheusError(.badResponse, base: base, detail: "scalar result is not [time, value]")
            }
            return [try value(pair[1], base: base)]
        case "vector":
            guard let series = data["result"] as? [[String: Any]] else {
                throw PrometheusError(.badResponse, base: base, detail: "vector result is not a list of series")
            }
            return try series.map { entry throws(PrometheusError) -> Double in
                guard let pair = entry["value"] as? [Any], pair.count == 2 else {
                    throw PrometheusError(.badResponse, base: base, detail: "a vector sample is not [time, value]")
                }
                return try value(pair[1], base: base)
            }
        default:
            throw PrometheusError(.unsupportedResult, base: base,
                                  detail: "result type '\(type)'; a gate needs a scalar or an instant vector")
        }
    }

    /// Prometheus writes sample values as strings: decimals, `NaN`, `+Inf`, `-Inf`.
    static func value(_ raw: Any, base: URL) throws(PrometheusError) -> Double {
        guard let text = raw as? String else {
            throw PrometheusError(.badResponse, base: base, detail: "sample value \(raw) is not a string")
        }
        switch text {
        case "NaN": return .nan
        case "+Inf", "Inf": return .infinity
        case "-Inf": return -.infinity
        default:
            guard let number = Double(text) else {
                throw PrometheusError(.badResponse, base: base, detail: "sample value '\(text)' is not a number")
            }
            return number
        }
    }
}

/// A `prometheus` gate: runs its query and judges the result with `PrometheusVerdict.judge`.
/// Any failure to get a result is an `error` outcome naming Prometheus's address and why.
public struct PrometheusGateSource: SignalSource {
    public let gate: String
    public let spec: PrometheusGate
    public let client: PrometheusQuerying

    public init(gate: String, spec: PrometheusGate, client: PrometheusQuerying) {
        self.gate = gate
        self.spec = spec
        self.client = client
    }

    public func evaluate() async -> GateOutcome {
        do {
            let result = try await client.query(base: spec.url, spec.query)
            return PrometheusVerdict.judge(result: result, min: spec.min, max: spec.max)
        } catch {
            return .error("\(error)")
        }
    }
}

/// Why a Prometheus query gave no result.
public struct PrometheusError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case unreachable, httpStatus, queryFailed, badResponse, unsupportedResult
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        /// No HTTP answer: refused, timed out, TLS failed.
        public static let unreachable = Code(.unreachable)
        /// An HTTP status other than 2xx without a Prometheus error body.
        public static let httpStatus = Code(.httpStatus)
        /// Prometheus answered `status: error` (bad query, its own timeout).
        public static let queryFailed = Code(.queryFailed)
        /// An answer that is not a Prometheus query result.
        public static let badResponse = Code(.badResponse)
        /// A matrix or string result: a gate needs one number.
        public static let unsupportedResult = Code(.unsupportedResult)
        public var description: String { base.rawValue }
    }

    public let code: Code
    /// Prometheus's base URL, without credentials (`HTTPError.redactingCredentials`).
    public let base: String
    /// Why; any URL in it is redacted the same way.
    public let detail: String

    public init(_ code: Code, base: URL, detail: String) {
        self.code = code
        self.base = HTTPError.redactingCredentials(base.absoluteString)
        self.detail = detail
    }

    public var description: String { "prometheus at \(base): \(code): \(detail)" }
}
