import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverNet
import SwitchoverTestKit

/// One cutover step applied to a real HAProxy with one backend of N servers (half blue, half
/// green), through the HAProxy driver, read-back included; and, for reference, the same
/// runtime-API lines replayed with the raw `LineClient` and with `socat`.
///
/// The servers point at a closed port and run no health checks: the benchmark measures the
/// control path (runtime API and parsing), not traffic.
enum FleetBenchmark {
    /// What one series of trials timed.
    enum Kind: Sendable {
        case translate, driverRead, rawRead, driverStats, rawStats, driverApply, rawApply, socat

        var label: String {
            switch self {
            case .translate: "WeightTranslation.weights, a share not searched before (CPU only)"
            case .driverRead: "driver currentWeights (show info;show servers state)"
            case .rawRead, .rawStats: "same line, raw LineClient"
            case .driverStats: "driver stats (show info;show stat)"
            case .driverApply: "driver apply: read, write, read back"
            case .rawApply: "same lines, raw LineClient"
            case .socat: "same lines, socat (one process per line)"
            }
        }
    }

    /// Wall times in ms of one kind of call at one fleet size.
    struct Result: Sendable {
        var size: Int
        var kind: Kind
        var roundTrips: Int
        var samples: [Double]
    }

    static func run(_ arguments: [String]) async throws {
        var sizes = [1_000, 10_000]
        var trials = 20
        var index = 0
        while index < arguments.count {
            switch arguments[index] {
            case "--servers":
                sizes = arguments[index + 1].split(separator: ",").compactMap { Int($0) }
                index += 2
            case "--trials":
                trials = Int(arguments[index + 1]) ?? trials
                index += 2
            default:
                throw TestKitError("unknown argument \(arguments[index])")
            }
        }
        print("One step on one HAProxy backend, wall time per step in ms over \(trials) trials "
              + "(\(ProcessInfo.processInfo.activeProcessorCount) cores, HAProxy over its UNIX admin socket)")
        print("")
        print("| servers | what | round trips | median ms | min ms | max ms |")
        print("|---:|---|---:|---:|---:|---:|")
        for result in try await measure(sizes: sizes, trials: trials) {
            row(result.size, result.kind.label, result.roundTrips, result.samples)
        }
    }

    /// Every kind of call at every size, `trials` times each (`bench/fleet.sh` prints them,
    /// `bench/run` takes the apply and socat rows).
    static func measure(sizes: [Int], trials: Int) async throws -> [Result] {
        let socat = try Tools.require("socat")
        var logger = Logger(label: "switchover.bench.fleet")
        logger.logLevel = .error
        var results: [Result] = []
        func row(_ size: Int, _ kind: Kind, _ roundTrips: Int, _ samples: [Double]) {
            results.append(Result(size: size, kind: kind, roundTrips: roundTrips, samples: samples))
        }
        for size in sizes {
            let directory = try TemporaryDirectory.make("fleet-bench")
            defer { try? FileManager.default.removeItem(at: directory) }
            let blue = (0..<size / 2).map { "blue-\($0)" }
            let green = (0..<(size - size / 2)).map { "green-\($0)" }
            let haproxy = try await HAProxyServer.start(
                servers: blue.map { .init(name: $0, address: "127.0.0.1:9", weight: 256) }
                    + green.map { .init(name: $0, address: "127.0.0.1:9", weight: 0) },
                in: directory)
            defer { haproxy.stopInBackground() }  // on a thrown error; otherwise stopped below
            let driver = try HAProxyLoadBalancer(spec: HAProxySpec(socket: haproxy.socketPath, backend: haproxy.backend),
                                                 from: ClusterServers(cluster: "blue", servers: blue),
                                                 to: ClusterServers(cluster: "green", servers: green), logger: logger)
            let steps: [Double] = [1, 5, 10, 25, 50, 75, 99]
            let assignments = steps.map { driver.translation.weights(percentToTarget: $0, from: blue, to: green) }

            // The translation `plan` and the runtime share, timed on its own.
            var translate: [Double] = []
            for trial in 0..<trials {
                let start = ContinuousClock.now
                // A share not searched before (searches are remembered): the search itself.
                _ = driver.translation.weights(percentToTarget: 0.5 + Double(trial) * 0.37, from: blue, to: green)
                translate.append(milliseconds(ContinuousClock.now - start))
            }

            _ = try await driver.apply(assignments[0]) // warm-up
            var applies: [Double] = []
            for trial in 0..<trials {
                let assignment = assignments[(trial + 1) % assignments.count]
                let start = ContinuousClock.now
                let live = try await driver.apply(assignment)
                applies.append(milliseconds(ContinuousClock.now - start))
                guard live.assignment == assignment else { throw TestKitError("read-back differs") }
            }

            let client = LineClient(address: haproxy.socketPath, connectTimeout: .seconds(2), readTimeout: .seconds(10))
            var reads: [Double] = [], rawReads: [Double] = []
            for _ in 0..<trials {
                var start = ContinuousClock.now
                _ = try await driver.currentWeights()
                reads.append(milliseconds(ContinuousClock.now - start))
                start = ContinuousClock.now
                _ = try await client.send("show info;show servers state \(haproxy.backend)")
                rawReads.append(milliseconds(ContinuousClock.now - start))
            }
            var raw: [Double] = []
            var socats: [Double] = []
            var roundTrips = 0
            for trial in 0..<trials {
                let lines = driver.commandLines(for: assignments[trial % assignments.count])
                roundTrips = lines.count
                var start = ContinuousClock.now
                for line in lines { _ = try await client.send(line) }
                raw.append(milliseconds(ContinuousClock.now - start))
                start = ContinuousClock.now
                for line in lines { try runSocat(socat, socket: haproxy.socketPath, line: line) }
                socats.append(milliseconds(ContinuousClock.now - start))
            }
            row(size, .translate, 0, translate)
            var statTimes: [Double] = [], rawStats: [Double] = []
            for _ in 0..<trials {
                var start = ContinuousClock.now
                _ = try await driver.stats()
                statTimes.append(milliseconds(ContinuousClock.now - start))
                start = ContinuousClock.now
                _ = try await client.send("show info;show stat \(haproxy.backend) 4 -1")
                rawStats.append(milliseconds(ContinuousClock.now - start))
            }
            row(size, .driverRead, 1, reads)
            row(size, .rawRead, 1, rawReads)
            row(size, .driverStats, 1, statTimes)
            row(size, .rawStats, 1, rawStats)
            row(size, .driverApply, roundTrips, applies)
            row(size, .rawApply, roundTrips, raw)
            row(size, .socat, roundTrips, socats)
            await haproxy.stop()  // gone before the next size's HAProxy starts
        }
        return results
    }

    static func row(_ size: Int, _ what: String, _ roundTrips: Int, _ samples: [Double]) {
        let sorted = samples.sorted()
        let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2]
            : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        print("| \(size) | \(what) | \(roundTrips) | \(format(median)) | \(format(sorted.first!)) | \(format(sorted.last!)) |")
    }

    static func format(_ value: Double) -> String { String(format: "%.2f", value) }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }

    static func runSocat(_ socat: String, socket: String, line: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: socat)
        process.arguments = ["-t", "10", "-", "UNIX-CONNECT:\(socket)"]
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        input.fileHandleForWriting.write(Data((line + "\n").utf8))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestKitError("socat exited \(process.terminationStatus)") }
    }
}
