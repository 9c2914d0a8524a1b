import Foundation
import SwitchoverCore
import SwitchoverNet
import SwitchoverTestKit
#if canImport(Glibc)
import Glibc
#endif

/// What the operator's surface (issue 17) costs the coordinator: CPU and peak RSS of the same
/// cutover with it off and on, as ratios.
///
/// Per trial, one lab and two runs, alternating which goes first: `switchover run --until
/// promoted` through steps 10/25/50/100 (bake 2 s, a gate on green's errors, the hard signal,
/// 250 ms sampling) under `hey` at 400 requests per second, reading `/proc/<pid>` every 100 ms:
/// VmHWM as the cutover figure does, and CPU as every thread's `schedstat` (ns; `/proc/<pid>/stat`'s
/// 10 ms ticks are a 1 m step over a 9 s run, coarser than the difference measured). "On" adds every argument list and policy lines of `features` (`/metrics`, with a
/// GET /metrics every second from a thread of the benchmark, as a Prometheus would; and
/// notifications of every event, signed, to a real receiver); a feature
/// that needs a receiver or a scraper starts it in its `start`. A run whose feature was not
/// exercised (no scrape answered) fails the figure rather than report a cost it did not measure.
enum OperatorSurfaceFigure {
    /// One part of the "on" configuration: the arguments it adds to `switchover run`, and what
    /// runs beside the coordinator meanwhile (stopped when the run ends; it returns a sentence
    /// saying what it saw, or throws when it saw nothing).
    struct Feature {
        var name: String
        var arguments: () throws -> [String]
        var start: () -> Companion
        /// Lines the "on" run's policy adds to its spec (written just before the run).
        var spec: () throws -> [String] = { [] }
    }

    /// What runs beside an "on" run: `finish` stops it and says what it saw.
    struct Companion {
        var finish: () throws -> String
    }

    /// `--metrics-address` on a free port, scraped every second.
    static func metrics() -> Feature {
        var port = 0
        return Feature(name: "/metrics", arguments: {
            port = try Loopback.freePort()
            return ["--metrics-address", "127.0.0.1:\(port)"]
        }, start: {
            let scraper = Scraper(port: port)
            scraper.start()
            return Companion(finish: {
                let (answered, bytes) = scraper.stop()
                guard answered > 0 else { throw TestKitError("/metrics on port \(port) never answered a scrape") }
                return "\(answered) scrapes answered (\(bytes / answered) bytes each)"
            })
        })
    }

    /// Every event of the run told, signed, as JSON to a receiver (Python's http.server, started
    /// per run), and the key events as Slack JSON to the same receiver.
    static func notifications(in folder: @escaping () -> URL) -> Feature {
        var receiver: HookReceiver?
        return Feature(name: "notifications", arguments: { [] }, start: {
            Companion(finish: {
                defer { receiver?.stopInBackground() }
                let got = receiver?.requests() ?? []
                guard got.contains(where: { $0.path == "/all" }) else { throw TestKitError("the notification receiver got nothing") }
                return "\(got.count) notifications received"
            })
        }, spec: {
            let key = folder().appendingPathComponent("notify.key")
            try Data("bench-key\n".utf8).write(to: key)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key.path)
            let started = try HookReceiver(blockingIn: folder())
            receiver = started
            return [
                "notifications:",
                "  - {name: all, url: \(started.url("all")), format: json, secretFile: \(key.path), events: [\(NotificationEvents.known.joined(separator: ", "))]}",
                "  - {name: chat, url: \(started.url("chat")), format: slack, events: [promoted, rolledBack, paused]}",
            ]
        })
    }

    static func measure(trials: Int, switchover: String, features: [Feature]? = nil) throws -> [FigureRow] {
        var labFolder = URL(fileURLWithPath: "/tmp")
        let features = features ?? [metrics(), notifications(in: { labFolder })]
        let names = features.map(\.name).joined(separator: " + ")
        progress("operator surface: \(trials) trial(s) of the cutover with \(names) off and on")
        var cpu: [Bool: [Double]] = [false: [], true: []], peak: [Bool: [Double]] = [false: [], true: []]
        var seen: [String] = []
        for trial in 1...trials {
            let lab = try BenchLab("surface", switchover: switchover)
            defer { lab.close() }
            labFolder = lab.folder
            try lab.writePolicy("surface", steps: [10, 25, 50, 100], bake: "2s", gate: true, hardSignal: true)
            let hey = try lab.startLoad(rate: 100, workers: 4, seconds: 300, log: "hey.log")
            defer { hey.stop() }
            usleep(1_000_000)
            for on in trial % 2 == 1 ? [false, true] : [true, false] {
                lab.freshJournal()
                // As the lab began: all weight on blue (the previous run promoted green).
                _ = try lab.admin.sendBlocking("set weight app/blue-1 1;set weight app/green-1 0")
                var extra = ["--until", "promoted"]
                var companions: [Companion] = []
                if on {
                    for feature in features { extra += try feature.arguments() }
                    try lab.writePolicy("surface-on", steps: [10, 25, 50, 100], bake: "2s", gate: true, hardSignal: true,
                                        extraSpec: try features.flatMap { try $0.spec() })
                }
                let coordinator = try lab.startCoordinator(policy: on ? "surface-on" : "surface", extra: extra,
                                                           log: "run-\(on ? "on" : "off")-\(trial).log")
                defer { coordinator.stop() }
                if on { companions = features.map { $0.start() } }
                let start = ContinuousClock.now
                var last: ProcReading?
                var threads = ThreadCPU()
                var lastAt = 0.0
                while coordinator.isRunning {
                    if let reading = ProcReading.read(coordinator.pid) {
                        last = reading
                        threads.read(coordinator.pid)
                        lastAt = seconds(since: start)
                    }
                    usleep(100_000)
                    guard seconds(since: start) < 120 else { throw TestKitError("operator surface trial \(trial): no end within 120 s:\n\(coordinator.logTail())") }
                }
                let saw = try companions.map { try $0.finish() }
                guard coordinator.exitStatus == 0, let last else {
                    throw TestKitError("operator surface trial \(trial) (\(on ? "on" : "off")): switchover run exited "
                                       + "\(coordinator.exitStatus.map(String.init) ?? "?"):\n\(coordinator.logTail())")
                }
                let millicores = threads.milliseconds(since: ThreadCPU()) / lastAt
                cpu[on]!.append(millicores)
                peak[on]!.append(Double(last.peakRSSKiB) / 1024)
                if on { seen = saw }
                progress(String(format: "  trial %d %@: %.1f s, peak RSS %.2f MiB, mean CPU %.2f m%@", trial, on ? "on " : "off", lastAt,
                                Double(last.peakRSSKiB) / 1024, millicores,
                                saw.isEmpty ? "" : "; " + saw.joined(separator: "; ")))
            }
        }
        let off = (cpu: Stats(cpu[false]!), peak: Stats(peak[false]!))
        let how = "`run --until promoted`, steps 10/25/50/100, bake 2 s, 250 ms sampling, hey at 400 req/s; on: "
            + features.map(\.name).joined(separator: ", ") + " (" + seen.joined(separator: "; ") + ", last trial); off and on alternate in one lab per trial"
        return [
            Stats(cpu[true]!).row("coordinator mean CPU, \(names) on vs off", unit: "m", reference: off.cpu.median,
                                  referenceLabel: String(format: "off, same trials: %.2f m (%.2f–%.2f)", off.cpu.median, off.cpu.min, off.cpu.max),
                                  note: "CPU time of every thread (/proc/<pid>/task/*/schedstat, ns) over the run's wall time, start-up included; " + how),
            Stats(peak[true]!).row("coordinator peak RSS, \(names) on vs off", unit: "MiB", reference: off.peak.median,
                                   referenceLabel: String(format: "off, same trials: %.2f MiB (%.2f–%.2f)", off.peak.median, off.peak.min, off.peak.max),
                                   note: "VmHWM from /proc/<pid>/status; " + how),
        ]
    }
}

/// GET /metrics every second on a thread of its own, over a plain socket (no HTTP library in the
/// measuring process's way), counting the answers that carry the run's phase.
final class Scraper: @unchecked Sendable {
    let port: Int
    private let lock = NSLock()
    private var running = true
    private var answered = 0
    private var bytes = 0
    private var thread: Thread?

    init(port: Int) { self.port = port }

    func start() {
        let thread = Thread { [self] in
            while lock.withLock({ running }) {
                if let body = Self.get(port: port), body.contains("switchover_phase{") {
                    lock.withLock { answered += 1; bytes += body.utf8.count }
                }
                usleep(1_000_000)
            }
        }
        self.thread = thread
        thread.start()
    }

    /// Stops after the scrape under way; how many answered and their bytes.
    func stop() -> (answered: Int, bytes: Int) {
        lock.withLock { running = false }
        usleep(50_000)
        return lock.withLock { (answered, bytes) }
    }

    /// One `GET /metrics` (HTTP/1.0: the server closes), the body; nil when nothing answered.
    static func get(port: Int) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let request = Array("GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else { return nil }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let read = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if read <= 0 { break }
            response += chunk[0..<read]
        }
        let text = String(decoding: response, as: UTF8.self)
        guard text.hasPrefix("HTTP/1.") && text.contains(" 200 "), let split = text.range(of: "\r\n\r\n") else { return nil }
        return String(text[split.upperBound...])
    }
}
