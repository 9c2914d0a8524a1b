import Foundation
import Synchronization
import SwitchoverCore
import SwitchoverNet
import SwitchoverTrust

/// What every hook call and notification says about the run, kept current by the coordinator
/// (set after every input; read by hook calls and notifications on their own tasks).
public struct RunFacts: Sendable, Hashable {
    public var run: Int64
    public var from: String
    public var to: String
    public var policy: String
    public var phase: Phase
    public var step: Int
    public var percent: Double

    public init(run: Int64, from: String, to: String, policy: String, phase: Phase = .pending, step: Int = 0, percent: Double = 0) {
        self.run = run
        self.from = from
        self.to = to
        self.policy = policy
        self.phase = phase
        self.step = step
        self.percent = percent
    }
}

/// The run's facts behind a lock: one writer (the coordinator), any readers.
public final class RunFactsBox: Sendable {
    private let facts: Mutex<RunFacts>
    public init(_ facts: RunFacts) { self.facts = Mutex(facts) }
    public var current: RunFacts { facts.withLock { $0 } }
    public func update(phase: Phase, step: Int, percent: Double) {
        facts.withLock {
            $0.phase = phase
            $0.step = step
            $0.percent = percent
        }
    }
}

/// The JSON body of every hook call and `json` notification: the contract's fields
/// (`run, from, to, policy, phase, step, percent, event, message, at`), then what a hook is
/// (`hook`, `type`, Flagger's `metadata`) and an event's evidence.
public struct HookBody: Codable, Sendable, Hashable {
    public var run: Int64
    public var from: String
    public var to: String
    public var policy: String
    public var phase: String
    public var step: Int
    public var percent: Double
    public var event: String
    public var message: String
    public var at: String
    public var hook: String?
    public var type: String?
    public var metadata: [String: String]?
    public var evidence: [String: String]?

    public init(_ facts: RunFacts, event: String, message: String, at: Instant, phase: Phase? = nil, step: Int? = nil,
                hook: String? = nil, type: String? = nil, metadata: [String: String]? = nil, evidence: [String: String]? = nil) {
        run = facts.run
        from = facts.from
        to = facts.to
        policy = facts.policy
        self.phase = (phase ?? facts.phase).rawValue
        self.step = step ?? facts.step
        percent = facts.percent
        self.event = event
        self.message = message
        self.at = at.iso8601
        self.hook = hook
        self.type = type
        self.metadata = metadata
        self.evidence = evidence
    }

    public var json: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)) ?? Data("{}".utf8)
    }
}

/// Signs POST bodies with the key of a `secretFile`: `X-Switchover-Signature: sha256=<hex
/// HMAC-SHA256 of the body>` (OpenSSL). The key is read once, when the run starts; a trailing
/// newline is not part of it (files written by `echo` have one).
public struct BodySigner: Sendable {
    public static let header = "X-Switchover-Signature"
    let key: Data

    public init(file: String) throws(HookError) {
        guard var key = FileManager.default.contents(atPath: file) else {
            throw HookError("cannot read secretFile \(file)")
        }
        while let last = key.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { key.removeLast() }
        guard !key.isEmpty else { throw HookError("secretFile \(file) is empty") }
        self.key = key
    }

    public init(key: Data) { self.key = key }

    public func signature(_ body: Data) -> String { "sha256=" + HMACSHA256.hex(key: key, message: body) }
    public func header(_ body: Data) -> HTTPHeader { HTTPHeader(Self.header, signature(body)) }
}

public struct HookError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Where a hook or receiver is, for messages: scheme, host, port and the first path segment.
/// Receivers' URLs often carry their secret in the path (Slack's incoming webhooks do).
public func shownURL(_ url: URL) -> String {
    var shown = "\(url.scheme ?? "http")://\(url.host ?? "?")" + (url.port.map { ":\($0)" } ?? "")
    let segments = url.path.split(separator: "/")
    if let first = segments.first { shown += "/\(first)" + (segments.count > 1 ? "/…" : "") }
    return shown
}

/// What a receiver answered, short and printable (it may answer anything, binary included).
func excerpt(_ body: Data, limit: Int = 120) -> String {
    let text = String(decoding: body.prefix(limit * 4), as: UTF8.self)
    let printable = String(text.unicodeScalars.map { $0.properties.isWhitespace ? " " : ($0.value < 32 || (0x7F...0x9F).contains($0.value) || $0.value == 0xFFFD ? "?" : Character($0)) })
        .trimmingCharacters(in: .whitespaces)
    return printable.count > limit ? String(printable.prefix(limit)) + "…" : printable
}

/// POSTs one body to a hook or receiver and says what came of it: the status, a redirect
/// (never followed: a receiver that moved is worth seeing), or why there was no answer.
public struct HookPost: Sendable {
    public enum Answer: Sendable, Hashable {
        case accepted(Int)
        case refused(status: Int, detail: String)
        case noAnswer(String)
    }

    public let client: HTTPClient
    public init(client: HTTPClient) { self.client = client }

    public func post(_ body: Data, to url: URL, timeout: Duration, signer: BodySigner?) async -> Answer {
        var headers = [HTTPHeader("Content-Type", "application/json"), HTTPHeader("User-Agent", "switchover")]
        if let signer { headers.append(signer.header(body)) }
        var request = HTTPRequest(method: "POST", url: url.absoluteString, headers: headers, body: body,
                                  connectTimeout: min(timeout, .seconds(5)), timeout: timeout)
        request.shownURL = shownURL(url)
        do {
            let response = try await client.execute(request)
            if (200..<300).contains(response.status) { return .accepted(response.status) }
            if (300..<400).contains(response.status) {
                let location = response.header("Location").flatMap(URL.init(string:)).map(shownURL) ?? "no Location"
                return .refused(status: response.status, detail: "HTTP \(response.status): a redirect (to \(location)), not followed")
            }
            let said = excerpt(response.body)
            return .refused(status: response.status, detail: "HTTP \(response.status)" + (said.isEmpty ? "" : ": \(said)"))
        } catch is CancellationError {
            return .noAnswer("cancelled")
        } catch let error as HTTPError {
            return .noAnswer("no answer from \(shownURL(url)): \(error.code)" + (error.code == .timeout ? " after \(formatDuration(timeout))" : ""))
        } catch {
            return .noAnswer("no answer from \(shownURL(url)): \(error)")
        }
    }
}

/// A webhook asked as a gate: `rollout` hooks, and the confirmation, pre-rollout and rollback
/// hooks the engine asks through `evaluateGates`. 2xx is `pass`, any other status `fail`, no
/// answer `error`; what each means is the engine's business (a rollback hook's `pass` asks for
/// a rollback).
public struct WebhookSource: SignalSource {
    public let hook: Webhook
    let post: HookPost
    let facts: RunFactsBox
    let signer: BodySigner?
    let clock: @Sendable () -> Instant

    public init(hook: Webhook, post: HookPost, facts: RunFactsBox, signer: BodySigner?,
                clock: @escaping @Sendable () -> Instant) {
        self.hook = hook
        self.post = post
        self.facts = facts
        self.signer = signer
        self.clock = clock
    }

    public var gate: String { hook.name }

    public func evaluate() async -> GateOutcome {
        let body = HookBody(facts.current, event: hook.type.rawValue, message: "\(hook.type.rawValue) hook \(hook.name)",
                            at: clock(), hook: hook.name, type: hook.type.rawValue,
                            metadata: hook.metadata.isEmpty ? nil : hook.metadata)
        switch await post.post(body.json, to: hook.url, timeout: hook.timeout, signer: signer) {
        case .accepted(let status): return .pass("HTTP \(status)")
        case .refused(_, let detail): return .fail(detail)
        case .noAnswer(let why): return .error(why)
        }
    }
}
