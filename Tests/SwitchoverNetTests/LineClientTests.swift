import Foundation
import SwitchoverNet
import SwitchoverTestKit
import Testing

@Suite("LineClient against a real HAProxy runtime API")
final class LineClientTests {
    let directory: URL

    init() throws {
        directory = try TemporaryDirectory.make("net-line")
    }

    /// Servers are stopped by each test's `defer` (and by ManagedProcess's deinit); then the
    /// folder with their configs, logs and keys goes.
    deinit { try? FileManager.default.removeItem(at: directory) }

    /// HAProxy with an admin socket on a UNIX path and on TCP, and one backend server to act on.
    func startHAProxy() async throws -> (process: ManagedProcess, socket: String, tcpPort: Int) {
        let haproxy = try Tools.require("haproxy")
        let socket = directory.appendingPathComponent("admin.sock").path
        let statsPort = try Loopback.freePort()
        let frontendPort = try Loopback.freePort()
        let backendPort = try Loopback.freePort()
        let config = """
        global
            stats socket \(socket) level admin
            stats socket ipv4@127.0.0.1:\(statsPort) level admin
        defaults
            mode http
            timeout connect 1s
            timeout client 5s
            timeout server 5s
        frontend fe
            bind 127.0.0.1:\(frontendPort)
            default_backend be
        backend be
            server s1 127.0.0.1:\(backendPort) weight 100

        """
        let configFile = directory.appendingPathComponent("haproxy.cfg")
        try config.write(to: configFile, atomically: true, encoding: .utf8)
        let process = try ManagedProcess(name: "haproxy", executable: haproxy, arguments: ["-f", configFile.path, "-db"],
                                         logFile: directory.appendingPathComponent("haproxy.log"))
        try await Loopback.waitForPort(statsPort, of: process)
        await Wait.until(timeout: 5) { FileManager.default.fileExists(atPath: socket) }
        return (process, socket, statsPort)
    }

    func client(_ address: String) -> LineClient {
        LineClient(address: address, connectTimeout: .seconds(1), readTimeout: .seconds(2))
    }

    @Test("show info over the UNIX socket and over TCP")
    func showInfo() async throws {
        let haproxy = try await startHAProxy()
        defer { haproxy.process.stopInBackground() }
        for address in [haproxy.socket, "unix:" + haproxy.socket, "tcp://127.0.0.1:\(haproxy.tcpPort)",
                        "ipv4@127.0.0.1:\(haproxy.tcpPort)"] {
            let info = try await client(address).send("show info")
            #expect(info.contains("Name: HAProxy"), "\(address): \(info.prefix(200))")
            #expect(info.contains("Pid: \(haproxy.process.pid)"))
        }
    }

    @Test("several commands joined by ';' on one line: set a weight and read it back")
    func setAndGetWeight() async throws {
        let haproxy = try await startHAProxy()
        defer { haproxy.process.stopInBackground() }
        let answer = try await client(haproxy.socket).send("set server be/s1 weight 37; get weight be/s1")
        #expect(answer.contains("37 (initial 100)"), "\(answer)")
        // The blocking form (the benchmark's), on a thread of its own: not on the cooperative pool.
        let tcpClient = client("tcp://127.0.0.1:\(haproxy.tcpPort)")
        let again = try await OwnThread.run("sendBlocking") { try tcpClient.sendBlocking("get weight be/s1") }
        #expect(again.trimmingCharacters(in: .whitespacesAndNewlines) == "37 (initial 100)")
    }

    @Test("a missing socket path: noSuchSocket naming the path and ENOENT")
    func missingSocket() async throws {
        let path = directory.appendingPathComponent("nobody-here.sock").path
        let error = await #expect(throws: LineClientError.self) { _ = try await client(path).send("show info") }
        #expect(error?.code == .noSuchSocket)
        #expect(error?.osErrno == ENOENT)
        #expect(error?.address == path)
        #expect("\(String(describing: error))".contains(path) && "\(String(describing: error))".contains("ENOENT"))
    }

    @Test("a refused TCP port: connectionRefused naming the address and ECONNREFUSED")
    func refusedPort() async throws {
        let address = "tcp://127.0.0.1:\(try Loopback.freePort())"
        let (error, elapsed) = await measure {
            await #expect(throws: LineClientError.self) { _ = try await client(address).send("show info") }
        }
        #expect(error?.code == .connectionRefused)
        #expect(error?.osErrno == ECONNREFUSED)
        #expect("\(String(describing: error))".contains(address) && "\(String(describing: error))".contains("ECONNREFUSED"))
        #expect(elapsed < .seconds(1))
    }

    @Test("a peer that never answers: readTimeout after about the read timeout")
    func readTimeout() async throws {
        let silent = try SilentListener()
        let lineClient = LineClient(address: "tcp://127.0.0.1:\(silent.port)", connectTimeout: .seconds(1),
                                    readTimeout: .milliseconds(400))
        let (error, elapsed) = await measure {
            await #expect(throws: LineClientError.self) { _ = try await lineClient.send("show info") }
        }
        #expect(error?.code == .readTimeout)
        #expect(elapsed >= .milliseconds(380) && elapsed < .milliseconds(1200), "took \(elapsed)")
    }

    @Test("bad addresses and multi-line commands are refused before connecting",
          arguments: ["admin.sock", "tcp://127.0.0.1", "tcp://127.0.0.1:0", "http://127.0.0.1:80", "unix:"])
    func badAddress(address: String) async throws {
        let error = await #expect(throws: LineClientError.self) { _ = try await client(address).send("show info") }
        #expect(error?.code == .badAddress)
    }

    @Test("a command with a line break is refused")
    func multiLineCommand() async throws {
        let error = await #expect(throws: LineClientError.self) {
            _ = try await client("/nonexistent.sock").send("show info\nshutdown frontend fe")
        }
        #expect(error?.code == .invalidCommand)
    }
}
