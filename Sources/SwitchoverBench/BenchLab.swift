import Foundation
import SwitchoverNet
import SwitchoverTestKit
#if canImport(Glibc)
import Glibc
#endif

/// One loopback world for a benchmark figure: nginx backends for blue and green (green's answer
/// 503 while their `fail` file exists), a real HAProxy in front (all weight on blue), shared-root
/// PKI so trust holds both ways, configuration folders, and the release `switchover` binary.
///
/// Everything the benchmark reports is read from here, outside the coordinator: HAProxy's runtime
/// API (weights, per-server counters), the load generator's report, `/proc`, the journal file.
final class BenchLab {
    let folder: URL
    let blue: [NginxBackend]
    let green: [NginxBackend]
    let haproxy: HAProxyServer
    let admin: LineClient
    let switchover: String
    let statePath: String

    init(_ name: String, switchover: String, blueServers: Int = 1, greenServers: Int = 1) throws {
        let folder = try TemporaryDirectory.make("bench-\(name)")
        self.folder = folder
        blue = try (1...blueServers).map { try NginxBackend(name: "blue-\($0)", in: folder) }
        green = try (1...greenServers).map { try NginxBackend(name: "green-\($0)", in: folder) }
        haproxy = try HAProxyServer(servers: blue.map { .init(name: $0.name, address: $0.address, weight: 1) }
                                        + green.map { .init(name: $0.name, address: $0.address, weight: 0) },
                                    in: folder)
        admin = LineClient(address: haproxy.socketPath, connectTimeout: .seconds(2), readTimeout: .seconds(5))
        self.switchover = switchover
        statePath = folder.appendingPathComponent("state/state.db").path
        try writeClusters()
    }

    func close() {
        haproxy.stop()
        for backend in blue + green { backend.stop() }
        try? FileManager.default.removeItem(at: folder)
    }

    // MARK: - Configuration

    private func writeClusters() throws {
        let trust = try ConfigDocuments.sharedTrust(in: folder, clusters: ["blue", "green"])
        let clusters = [("blue", blue, "1.27.4"), ("green", green, "1.28.0")].map { name, backends, version in
            ClusterDocument(name: name, istioVersion: version, rootCerts: trust[name]!.roots.path,
                            certChain: trust[name]!.chain.path, servers: backends.map(\.name),
                            health: "http://\(backends[0].address)/healthz")
        }
        try ConfigDocuments.write(clusters: clusters, policies: [], in: folder)
    }

    /// Writes policy `name`. `gate`: a load-balancer gate on green's 5xx (needs traffic to pass);
    /// `hardSignal`: rollback on one sample of green's 5xx ratio.
    func writePolicy(_ name: String, steps: [Int], bake: String, interval: String = "500ms", gate: Bool,
                     hardSignal: Bool, holdFor: String = "1s", extraSpec: [String] = []) throws {
        var policy = PolicyDocument(
            name: name, loadBalancer: PolicyDocument.haproxy(socket: haproxy.socketPath), steps: steps, bake: bake,
            interval: interval, sampling: "250ms", failureThreshold: 2,
            gates: gate ? ["name: green-errors\nloadBalancer: {cluster: green, max5xxRatio: 0.05, minRequests: 10}"] : [],
            hardSignal: hardSignal ? (0.2, 10) : nil, drain: PolicyDocument.drain(holdFor: holdFor, timeout: "2m"))
        policy.extraSpec = extraSpec
        try ConfigDocuments.write(clusters: [], policies: [policy], in: folder)
    }

    var globalArguments: [String] {
        ["--clusters", folder.appendingPathComponent("clusters").path,
         "--policies", folder.appendingPathComponent("policies").path,
         "--state", statePath]
    }

    /// Removes the journal so the next `run` is a fresh run.
    func freshJournal() {
        for suffix in ["", "-wal", "-shm", ".lock"] { try? FileManager.default.removeItem(atPath: statePath + suffix) }
    }

    // MARK: - Processes

    /// `switchover run blue green --policy NAME` as a process of its own (logs in the lab folder).
    func startCoordinator(policy: String, extra: [String] = [], log: String) throws -> ManagedProcess {
        var environment = ProcessInfo.processInfo.environment
        environment["SWITCHOVER_LOG_LEVEL"] = "info"
        return try ManagedProcess(name: "switchover run", executable: switchover,
                                  arguments: ["run", "blue", "green", "--policy", policy] + extra + globalArguments,
                                  environment: environment, logFile: folder.appendingPathComponent(log))
    }

    /// Runs a `switchover` command to completion (control commands, `plan`, `decommission`).
    func switchoverCommand(_ arguments: [String]) throws -> Command.Result {
        try Command.run(switchover, arguments + globalArguments)
    }

    /// `hey -z SECONDSs -q RATE -c WORKERS` against HAProxy's frontend: RATE × WORKERS requests
    /// per second. Stop it with `HeyReport.finish`, which reads its report.
    func startLoad(rate: Int, workers: Int, seconds: Int, log: String) throws -> ManagedProcess {
        try Load.startHey(haproxy.url, seconds: seconds, rate: rate, workers: workers,
                          logFile: folder.appendingPathComponent(log))
    }

    // MARK: - HAProxy, read by the benchmark

    /// Live weights of every server, in one runtime-API round trip.
    func weights() throws -> [String: Int] {
        let names = (blue + green).map(\.name)
        let answer = try admin.sendBlocking(names.map { "get weight app/\($0)" }.joined(separator: ";"))
        let values = answer.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        guard values.count == names.count else { throw TestKitError("get weight answered: \(answer)") }
        var result: [String: Int] = [:]
        for (name, line) in zip(names, values) {
            guard let weight = Int(line.split(separator: " ").first ?? "") else { throw TestKitError("get weight app/\(name): \(line)") }
            result[name] = weight
        }
        return result
    }

    /// Per server: responses HAProxy got from it (the sum of its `hrsp_*` columns) and its 5xx.
    func serverCounters() throws -> [String: (total: Int, errors5xx: Int)] {
        let csv = try admin.sendBlocking("show stat app 4 -1")
        let lines = csv.split(separator: "\n")
        guard let header = lines.first, header.hasPrefix("# ") else { throw TestKitError("show stat answered: \(csv.prefix(200))") }
        let columns = header.dropFirst(2).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let name = columns.firstIndex(of: "svname"), let errors = columns.firstIndex(of: "hrsp_5xx") else { throw TestKitError("show stat header: \(header)") }
        let all = ["hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"].compactMap { columns.firstIndex(of: $0) }
        var result: [String: (total: Int, errors5xx: Int)] = [:]
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count > errors else { continue }
            result[String(fields[name])] = (total: all.reduce(0) { $0 + (Int(fields[$1]) ?? 0) }, errors5xx: Int(fields[errors]) ?? 0)
        }
        return result
    }
}

/// CPU time of a process in nanoseconds, thread by thread (`/proc/PID/task/*/schedstat`, whose
/// first field is the time on a CPU in ns): finer than `/proc/PID/stat`'s clock ticks (10 ms,
/// which over a 12 s window is a 1 m step). Keeps each thread's last reading, so a thread that
/// ended between two readings still counts up to the last one.
struct ThreadCPU {
    private(set) var byThread: [Int: UInt64] = [:]

    mutating func read(_ pid: Int32) {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return }
        for task in tasks {
            guard let tid = Int(task),
                  let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/schedstat", encoding: .utf8),
                  let first = text.split(separator: " ").first, let ns = UInt64(first) else { continue }
            byThread[tid] = max(byThread[tid] ?? 0, ns)
        }
    }

    /// Milliseconds of CPU since `baseline` (threads started since count whole).
    func milliseconds(since baseline: ThreadCPU) -> Double {
        Double(byThread.reduce(UInt64(0)) { $0 + ($1.value - min($1.value, baseline.byThread[$1.key] ?? 0)) }) / 1e6
    }
}

/// `/proc/<pid>` of a running process: peak RSS and CPU ticks, read from outside it.
struct ProcReading {
    var peakRSSKiB: Int
    var cpuSeconds: Double
    /// Resident memory now, split as the kernel counts it: anonymous (heap, stacks) and
    /// file-backed (mapped executables and shared libraries, shareable between processes).
    var rssAnonKiB: Int
    var rssFileKiB: Int

    static func read(_ pid: Int32) -> ProcReading? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return nil }
        func kib(_ key: String) -> Int? {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return nil }
            return Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "")
        }
        guard let hwm = kib("VmHWM") else { return nil }
        // Fields after the command name (which may hold spaces, so split after its ')'):
        // state is field 3, utime 14 and stime 15.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
        return ProcReading(peakRSSKiB: hwm, cpuSeconds: (utime + stime) / Double(sysconf(Int32(_SC_CLK_TCK))),
                           rssAnonKiB: kib("RssAnon") ?? 0, rssFileKiB: kib("RssFile") ?? 0)
    }
}

/// Resident memory of a running process per mapping (`/proc/<pid>/smaps`), in KiB: each file by
/// its name (the binary, each shared library), anonymous memory (heap, stacks) as one.
struct MappingRSS {
    var kib: [String: Int]

    static func read(_ pid: Int32) -> MappingRSS? {
        // Read to the end: a procfs file has no size, and one read() returns a page of it.
        guard let handle = FileHandle(forReadingAtPath: "/proc/\(pid)/smaps"),
              let data = try? handle.readToEnd() else { return nil }
        try? handle.close()
        let smaps = String(decoding: data, as: UTF8.self)
        var kib: [String: Int] = [:]
        var current = "anonymous"
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.contains("-") && !first.hasSuffix(":") {
                // A mapping's header: address range, perms, offset, device, inode, [path].
                let path = fields.count > 5 ? String(fields[5]) : ""
                current = path.hasPrefix("/") ? String(path.split(separator: "/").last!) : "anonymous"
            } else if first == "Rss:", fields.count > 1, let value = Int(fields[1]) {
                kib[current, default: 0] += value
            }
        }
        return MappingRSS(kib: kib)
    }

    /// `switchover 18.3, libcrypto.so.3 4.0, ..., 9 others 2.1 MiB`: the largest `top` and the rest.
    func summary(top: Int) -> String {
        let sorted = kib.sorted { $0.value > $1.value }
        var parts = sorted.prefix(top).map { String(format: "%@ %.1f", $0.key, Double($0.value) / 1024) }
        let rest = sorted.dropFirst(top)
        if !rest.isEmpty { parts.append(String(format: "%d others %.1f", rest.count, Double(rest.reduce(0) { $0 + $1.value }) / 1024)) }
        return parts.joined(separator: ", ") + " MiB"
    }
}

/// Seconds since `start`, as a Double.
func seconds(since start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

func waitUntil(timeout: Double, poll: Double = 0.01, _ condition: () throws -> Bool) rethrows -> Bool {
    let start = ContinuousClock.now
    while seconds(since: start) < timeout {
        if try condition() { return true }
        usleep(UInt32(poll * 1e6))
    }
    return try condition()
}

/// 1000 → "1,000", whatever the locale.
func grouped(_ value: Int) -> String {
    var digits = String(value)
    var index = digits.count - 3
    while index > 0 {
        digits.insert(",", at: digits.index(digits.startIndex, offsetBy: index))
        index -= 3
    }
    return digits
}
