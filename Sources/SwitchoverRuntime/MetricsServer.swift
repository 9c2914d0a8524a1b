import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization
import SwitchoverCore
#if canImport(Glibc)
import Glibc
#endif

/// `--metrics-address HOST:PORT` as given, checked: a host (a name or an address; IPv6 in
/// brackets, `[::1]:9464`) and a port from 1 to 65535.
public struct MetricsAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    /// Throws `RuntimeError.Code.metricsAddress` saying what is wrong with `text`.
    public init(parsing text: String) throws {
        func malformed(_ why: String) -> RuntimeError {
            RuntimeError(.metricsAddress, "--metrics-address '\(text)' is not HOST:PORT: \(why)")
        }
        guard let colon = text.lastIndex(of: ":") else { throw malformed("no port") }
        var host = String(text[..<colon])
        let port = String(text[text.index(after: colon)...])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            throw malformed("an IPv6 address goes in brackets, as in [::1]:9464")
        }
        guard !host.isEmpty, !host.contains(where: \.isWhitespace) else { throw malformed("no host (bind 127.0.0.1 or a named address)") }
        guard let number = Int(port), (1...65535).contains(number) else { throw malformed("port '\(port)' is not 1 to 65535") }
        self.host = host
        self.port = number
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// What `run` and `drain` are asked about their `/metrics` endpoint.
public struct MetricsOptions: Sendable {
    /// `--metrics-address`, as typed (checked by the runtime, which refuses a bad one with exit 2).
    public var address: String
    /// `--metrics-linger`: once the coordinator is done, how long `/metrics` may stay up for one
    /// more scrape to read the final state (promoted, rolled back). Zero: it closes at once.
    public var linger: Duration

    public init(address: String, linger: Duration = .zero) {
        self.address = address
        self.linger = linger
    }
}

/// The HTTP endpoint of the coordinator's metrics: `GET /metrics` answers the text exposition of
/// `MetricsReporter.render()`, any other path 404. SwiftNIO, on the process's shared event loop
/// group: a scrape is rendered there, never on the coordinator's task, and a slow or stuck
/// scraper holds only its own connection.
///
/// It binds when made (`bind`), so that an address in use refuses the command before anything
/// else happens, and runs as a `Service` in the coordinator's `ServiceGroup`: listed before the
/// coordinator, it is shut down after it, and closes once the final state was scraped or the
/// linger passed.
public final class MetricsServer: Service, Sendable {
    public let metrics: MetricsReporter
    public let linger: Duration
    /// The address it listens on (the port the OS chose when asked for 0).
    public let boundAddress: String
    private let channel: any Channel
    private let scrapes: Scrapes
    private let logger: Logger
    /// Called once the coordinator is done, before the linger: the last values to set
    /// (`switchover_leader` 0 when the lease was lost).
    private let finalValues: Mutex<(@Sendable () -> Void)?> = Mutex(nil)

    /// Counted when a scrape's answer was written.
    final class Scrapes: Sendable {
        let count = Atomic<Int>(0)
    }

    private init(metrics: MetricsReporter, linger: Duration, channel: any Channel, scrapes: Scrapes, logger: Logger) {
        self.metrics = metrics
        self.linger = linger
        self.channel = channel
        self.scrapes = scrapes
        self.logger = logger
        boundAddress = channel.localAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
    }

    /// Listens on `address` (and nothing else). Throws `RuntimeError.Code.metricsBind` naming the
    /// address when it cannot (in use, not an address of this machine, a name that does not
    /// resolve).
    public static func bind(_ address: MetricsAddress, metrics: MetricsReporter, linger: Duration = .zero,
                            logger: Logger) async throws -> MetricsServer {
        let scrapes = Scrapes()
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(metrics: metrics, scrapes: scrapes))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: address.host, port: address.port).get()
        } catch {
            throw RuntimeError(.metricsBind, "cannot serve /metrics on \(address): \(Self.explain(error)); nothing was changed")
        }
        return MetricsServer(metrics: metrics, linger: linger, channel: channel, scrapes: scrapes, logger: logger)
    }

    static func explain(_ error: any Error) -> String {
        if let io = error as? IOError {
            switch io.errnoCode {
            case EADDRINUSE: return "the address is already in use"
            case EADDRNOTAVAIL: return "not an address of this machine"
            case EACCES: return "permission denied (ports below 1024 need privileges)"
            default: return "\(io)"
            }
        }
        return "\(error)"
    }

    /// What to set once the coordinator is done, before the final scrape.
    public func onCoordinatorDone(_ body: @escaping @Sendable () -> Void) {
        finalValues.withLock { $0 = body }
    }

    /// Serves until the group shuts down (after the coordinator: see the type's comment), then
    /// waits for one scrape of the final state, at most `linger`, and closes. Cancelled (the
    /// coordinator failed), it closes at once.
    public func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            close()
            return
        }
        finalValues.withLock { $0 }?()
        if linger > .zero {
            let seen = scrapes.count.load(ordering: .acquiring)
            let deadline = ContinuousClock.now + linger
            while scrapes.count.load(ordering: .acquiring) == seen, ContinuousClock.now < deadline {
                do { try await Task.sleep(for: .milliseconds(50)) } catch { break }
            }
        }
        close()
    }

    /// Stops listening (connections being answered finish); safe to call more than once.
    public func close() {
        channel.close(promise: nil)
    }
}

/// Answers one HTTP/1.1 connection's requests in order (the pipeline handler keeps pipelined
/// requests apart): `GET` or `HEAD /metrics` the exposition, any other path 404, any other method
/// 405. Keep-alive as the client asks (Prometheus keeps its connection).
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let metrics: MetricsReporter
    let scrapes: MetricsServer.Scrapes
    /// The head of the request being read (a handler lives on its channel's event loop).
    private var head: HTTPRequestHead?

    init(metrics: MetricsReporter, scrapes: MetricsServer.Scrapes) {
        self.metrics = metrics
        self.scrapes = scrapes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
        case .body:
            break
        case .end:
            guard let request = head else { return }
            head = nil
            respond(to: request, context: context)
        }
    }

    private func respond(to request: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let status: HTTPResponseStatus
        var body: [UInt8]
        var contentType = "text/plain; charset=utf-8"
        if path != "/metrics" {
            status = .notFound
            body = Array("not found: /metrics is the only path\n".utf8)
        } else if request.method != .GET && request.method != .HEAD {
            status = .methodNotAllowed
            body = Array("GET /metrics\n".utf8)
        } else {
            status = .ok
            body = metrics.render()
            contentType = "text/plain; version=0.0.4; charset=utf-8"
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: "\(body.count)")
        if request.method == .HEAD { body = [] }
        let keepAlive = request.isKeepAlive
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if !body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let scrapes = self.scrapes
        let counted = status == .ok
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if counted { scrapes.count.wrappingAdd(1, ordering: .releasing) }
            if !keepAlive { channel.close(promise: nil) }
        }
    }
}
