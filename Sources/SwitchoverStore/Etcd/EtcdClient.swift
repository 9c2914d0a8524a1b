import Foundation
import Logging
import SwitchoverNet

/// A client of etcd's v3 JSON gateway (`/v3/kv/range`, `/v3/kv/txn`, `/v3/lease/...`) over
/// libcurl, for the etcd journal and its leader lease.
///
/// Synchronous on purpose: every `JournalStore` operation is one blocking write, as SQLite's
/// are, so each call waits for its answer on the calling thread. Timeouts are therefore short
/// (`Timeouts`): a member that does not answer costs at most `connect` or `request`, then the
/// next endpoint of the list is tried, and the one that answered is asked first next time.
///
/// Errors are `StoreError`s a caller can act on:
/// - `.unavailable`: no endpoint answered, or the one that did has no quorum (etcd's
///   "request timed out", "no leader", gRPC Unavailable). Transient: nothing is known to be
///   written, and the coordinator holds still until etcd answers again.
/// - `.etcd`: etcd answered with an error that will not pass by waiting (permission denied,
///   a request too large, a malformed request). The message is etcd's.
///
/// Keys and values are bytes; the gateway wants them base64, and int64 fields as strings.
///
/// `@unchecked Sendable`: `preferred` is guarded by `lock`; the rest is immutable.
public final class EtcdClient: @unchecked Sendable {
    public struct Timeouts: Sendable, Hashable {
        /// To connect (TCP and TLS) to one member.
        public var connect: Duration
        /// For one request to one member, connect included. A member that lost quorum holds a
        /// write until its own timeout (seconds): this bounds how long a caller waits for it.
        public var request: Duration
        public init(connect: Duration = .milliseconds(500), request: Duration = .seconds(2)) {
            self.connect = connect
            self.request = request
        }
    }

    /// `http://host:port` or `https://host:port`, in the order given.
    public let endpoints: [String]
    public let timeouts: Timeouts
    let tls: TLSConfiguration
    let logger: Logger
    private let http: HTTPClient
    private let lock = NSLock()
    private var preferred = 0

    public init(endpoints: [String], tls: TLSConfiguration = .systemTrust, timeouts: Timeouts = Timeouts(),
                logger: Logger = Logger(label: "switchover.etcd")) {
        precondition(!endpoints.isEmpty, "an etcd client needs at least one endpoint")
        self.endpoints = endpoints
        self.timeouts = timeouts
        self.tls = tls
        self.logger = logger
        self.http = HTTPClient(configuration: .init(tls: tls, connectTimeout: timeouts.connect, timeout: timeouts.request,
                                                    maxResponseBytes: 256 << 20, maxIdleHandles: 4),
                               logger: logger)
    }

    /// The same endpoints and TLS with other timeouts (the lease's renewals, which must not wait
    /// out a member that does not answer for longer than a fraction of the TTL).
    public func with(timeouts: Timeouts) -> EtcdClient {
        EtcdClient(endpoints: endpoints, tls: tls, timeouts: timeouts, logger: logger)
    }

    // MARK: - Calls

    /// POSTs `body` to `path` (`/v3/kv/txn`, ...) on the preferred endpoint, then on each other
    /// one while they are unavailable; decodes the answer.
    public func call<Request: Encodable, Response: Decodable>(_ path: String, _ body: Request,
                                                              as: Response.Type = Response.self) throws -> Response {
        let data = try JSONEncoder().encode(body)
        let start = lock.withLock { preferred }
        var failures: [String] = []
        var tlsFailures = 0
        for offset in 0..<endpoints.count {
            let index = (start + offset) % endpoints.count
            let endpoint = endpoints[index]
            let response: HTTPResponse
            do {
                response = try http.executeBlocking(HTTPRequest(method: "POST", url: endpoint + path,
                                                                headers: [HTTPHeader("Content-Type", "application/json")],
                                                                body: data))
            } catch let error as HTTPError {
                // A handshake can fail on one member alone (killed mid-handshake, its certificate
                // being rotated): the next is tried. Only when every member fails TLS is it ours.
                if [.tlsVerificationFailed, .tlsHandshakeFailed, .tlsConfiguration].contains(error.code) { tlsFailures += 1 }
                failures.append("\(endpoint): \(error.message)")
                continue
            }
            if response.status == 200 {
                lock.withLock { preferred = index }
                do {
                    return try JSONDecoder().decode(Response.self, from: response.body)
                } catch {
                    throw StoreError(.etcd, "etcd at \(endpoint)\(path): an answer that is not etcd's: \(Self.quote(response.body))")
                }
            }
            let failure = (try? JSONDecoder().decode(GatewayError.self, from: response.body))
            let message = failure?.message ?? failure?.error ?? Self.quote(response.body)
            if Self.isTransient(status: response.status, code: failure?.code, message: message) {
                failures.append("\(endpoint): \(message)")
                continue
            }
            throw StoreError(.etcd, "etcd at \(endpoint)\(path) answered HTTP \(response.status): \(message)")
        }
        if tlsFailures == endpoints.count {
            throw StoreError(.etcd, "etcd: TLS failed with every endpoint (" + failures.joined(separator: "; ")
                             + "): check --etcd-cacert, --etcd-cert, --etcd-key")
        }
        var hint = ""
        if endpoints.allSatisfy({ $0.hasPrefix("https://") }),
           failures.contains(where: { $0.contains("reset") || $0.contains("closed") || $0.contains("client preface") }) {
            hint = " (over TLS, an etcd that wants a client certificate and gets none closes the connection like this: "
                + "check --etcd-cert and --etcd-key)"
        }
        throw StoreError(.unavailable, "etcd unavailable: " + failures.joined(separator: "; ") + hint)
    }

    /// etcd errors that pass by waiting: no leader, no quorum (a write times out), a leader
    /// change under way, too many requests, or a gateway that cannot reach its own member.
    static func isTransient(status: Int, code: Int?, message: String) -> Bool {
        // gRPC codes: 4 DeadlineExceeded, 8 ResourceExhausted (too many requests), 14 Unavailable.
        if let code, [4, 8, 14].contains(code) { return true }
        let transient = ["request timed out", "no leader", "leader changed", "too many requests", "timed out",
                         "connection refused", "not capable", "unhealthy cluster", "context deadline exceeded"]
        return status >= 500 && transient.contains { message.contains($0) } || status == 503
    }

    static func quote(_ body: Data) -> String {
        let text = String(decoding: body.prefix(200), as: UTF8.self)
        return "'" + text.map { $0.isASCII && !$0.isNewline && ($0.asciiValue ?? 0) >= 0x20 ? String($0) : "?" }.joined() + "'"
            + (body.count > 200 ? "…" : "")
    }

    // MARK: - Typed operations

    public func range(_ request: RangeRequest) throws -> RangeResponse {
        try call("/v3/kv/range", request)
    }

    /// The value and revisions of one key, or nil.
    public func get(_ key: String) throws -> KeyValue? {
        try range(RangeRequest(key: key)).kvs?.first
    }

    public func txn(_ request: TxnRequest) throws -> TxnResponse {
        try call("/v3/kv/txn", request)
    }

    /// A new lease of `ttl` seconds; returns its id and the TTL etcd granted.
    public func grant(ttl: Int64) throws -> (id: Int64, ttl: Int64) {
        let response: LeaseGrantResponse = try call("/v3/lease/grant", LeaseGrantRequest(TTL: EtcdInt(ttl), ID: EtcdInt(0)))
        if let error = response.error, !error.isEmpty { throw StoreError(.etcd, "etcd refused a lease: \(error)") }
        return (response.ID?.value ?? 0, response.TTL?.value ?? 0)
    }

    /// Renews the lease once; returns the TTL left (0 or less: the lease is gone).
    public func keepAlive(_ id: Int64) throws -> Int64 {
        let response: LeaseKeepAliveStream = try call("/v3/lease/keepalive", LeaseID(ID: EtcdInt(id)))
        if let error = response.error { throw StoreError(.unavailable, "etcd could not renew lease \(id): \(error.message ?? "?")") }
        return response.result?.TTL?.value ?? 0
    }

    /// Ends the lease and deletes the keys bound to it.
    public func revoke(_ id: Int64) throws {
        let _: Header.Holder = try call("/v3/lease/revoke", LeaseID(ID: EtcdInt(id)))
    }

    /// Drops the key-value history older than `revision` (the current values stay).
    public func compact(revision: Int64) throws {
        let _: Header.Holder = try call("/v3/kv/compaction", CompactionRequest(revision: EtcdInt(revision), physical: false))
    }
}

// MARK: - The gateway's JSON

/// An int64 as the gateway writes it (a string) or as a number; encoded as a string.
public struct EtcdInt: Codable, Sendable, Hashable {
    public var value: Int64
    public init(_ value: Int64) { self.value = value }
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self), let value = Int64(text) {
            self.value = value
        } else {
            value = try container.decode(Int64.self)
        }
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(String(value))
    }
}

/// Bytes as base64, the gateway's form of keys and values.
public struct EtcdBytes: Codable, Sendable, Hashable {
    public var data: Data
    public init(_ text: String) { data = Data(text.utf8) }
    public init(data: Data) { self.data = data }
    public var text: String { String(decoding: data, as: UTF8.self) }
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let data = Data(base64Encoded: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not base64"))
        }
        self.data = data
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(data.base64EncodedString())
    }
}

struct GatewayError: Decodable {
    var error: String?
    var message: String?
    var code: Int?
}

public struct Header: Decodable, Sendable {
    public var revision: EtcdInt?
    struct Holder: Decodable { var header: Header? }
}

public struct KeyValue: Decodable, Sendable {
    public var key: EtcdBytes
    public var value: EtcdBytes?
    public var create_revision: EtcdInt?
    public var mod_revision: EtcdInt?
    public var version: EtcdInt?
    public var lease: EtcdInt?

    public var keyText: String { key.text }
    public var valueText: String { value?.text ?? "" }
    public var createRevision: Int64 { create_revision?.value ?? 0 }
    public var modRevision: Int64 { mod_revision?.value ?? 0 }
}

public struct RangeRequest: Encodable, Sendable {
    public var key: EtcdBytes
    public var range_end: EtcdBytes?
    public var limit: EtcdInt?
    public var sort_order: String?
    public var sort_target: String?
    public var keys_only: Bool?
    public var count_only: Bool?

    /// One key.
    public init(key: String) { self.key = EtcdBytes(key) }
    /// Keys from `from` (included) up to `to` (excluded), in key order (`descending`: from the
    /// last); at most `limit` (0: all).
    public init(from: String, to: String, limit: Int = 0, descending: Bool = false, keysOnly: Bool = false) {
        key = EtcdBytes(from)
        range_end = EtcdBytes(to)
        if limit > 0 { self.limit = EtcdInt(Int64(limit)) }
        if descending {
            sort_order = "DESCEND"
            sort_target = "KEY"
        }
        if keysOnly { keys_only = true }
    }
    /// Every key that starts with `prefix`.
    public static func prefix(_ prefix: String, limit: Int = 0, descending: Bool = false, keysOnly: Bool = false) -> RangeRequest {
        RangeRequest(from: prefix, to: EtcdClient.prefixEnd(prefix), limit: limit, descending: descending, keysOnly: keysOnly)
    }
}

public struct RangeResponse: Decodable, Sendable {
    public var header: Header?
    public var kvs: [KeyValue]?
    public var more: Bool?
    public var count: EtcdInt?
}

public struct Compare: Encodable, Sendable {
    public var key: EtcdBytes
    public var target: String
    public var result: String
    public var create_revision: EtcdInt?
    public var mod_revision: EtcdInt?
    public var version: EtcdInt?

    /// The key was created at `revision` (0: it does not exist).
    public static func created(_ key: String, at revision: Int64) -> Compare {
        Compare(key: EtcdBytes(key), target: "CREATE", result: "EQUAL", create_revision: EtcdInt(revision))
    }
    /// The key was last changed at `revision` (0: it does not exist).
    public static func modified(_ key: String, at revision: Int64) -> Compare {
        Compare(key: EtcdBytes(key), target: "MOD", result: "EQUAL", mod_revision: EtcdInt(revision))
    }
    /// The key exists.
    public static func exists(_ key: String) -> Compare {
        Compare(key: EtcdBytes(key), target: "VERSION", result: "GREATER", version: EtcdInt(0))
    }
}

public struct RequestOp: Encodable, Sendable {
    public struct Put: Encodable, Sendable {
        var key: EtcdBytes
        var value: EtcdBytes
        var lease: EtcdInt?
    }
    public struct Delete: Encodable, Sendable {
        var key: EtcdBytes
        var range_end: EtcdBytes?
    }
    var request_put: Put?
    var request_range: RangeRequest?
    var request_delete_range: Delete?

    public static func put(_ key: String, _ value: String, lease: Int64? = nil) -> RequestOp {
        RequestOp(request_put: Put(key: EtcdBytes(key), value: EtcdBytes(value), lease: lease.map(EtcdInt.init)))
    }
    public static func get(_ request: RangeRequest) -> RequestOp { RequestOp(request_range: request) }
    public static func get(_ key: String) -> RequestOp { RequestOp(request_range: RangeRequest(key: key)) }
    public static func delete(_ key: String) -> RequestOp {
        RequestOp(request_delete_range: Delete(key: EtcdBytes(key)))
    }
    /// Deletes the keys from `from` (included) to `to` (excluded).
    public static func delete(from: String, to: String) -> RequestOp {
        RequestOp(request_delete_range: Delete(key: EtcdBytes(from), range_end: EtcdBytes(to)))
    }
}

public struct TxnRequest: Encodable, Sendable {
    public var compare: [Compare]
    public var success: [RequestOp]
    public var failure: [RequestOp]
    public init(compare: [Compare], success: [RequestOp], failure: [RequestOp] = []) {
        self.compare = compare
        self.success = success
        self.failure = failure
    }
}

public struct TxnResponse: Decodable, Sendable {
    public struct Op: Decodable, Sendable {
        public var response_range: RangeResponse?
    }
    public var header: Header?
    public var succeeded: Bool?
    public var responses: [Op]?

    public var ok: Bool { succeeded ?? false }
    public var revision: Int64 { header?.revision?.value ?? 0 }
    /// The keys read by the `index`th operation of the branch taken.
    public func read(_ index: Int) -> [KeyValue] {
        guard let responses, index < responses.count else { return [] }
        return responses[index].response_range?.kvs ?? []
    }
}

struct LeaseGrantRequest: Encodable { var TTL: EtcdInt; var ID: EtcdInt }
struct LeaseGrantResponse: Decodable { var ID: EtcdInt?; var TTL: EtcdInt?; var error: String? }
struct LeaseID: Encodable { var ID: EtcdInt }
struct LeaseKeepAliveStream: Decodable {
    struct Result: Decodable { var ID: EtcdInt?; var TTL: EtcdInt? }
    var result: Result?
    var error: GatewayError?
}
struct CompactionRequest: Encodable { var revision: EtcdInt; var physical: Bool }

extension EtcdClient {
    /// The first key after every key that starts with `prefix` (etcd's `range_end` for a
    /// prefix): the prefix with its last byte incremented.
    public static func prefixEnd(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes.removeLast()
        }
        return "\0"
    }
}
