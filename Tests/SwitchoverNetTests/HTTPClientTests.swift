import Foundation
import Logging
import SwitchoverNet
import SwitchoverTestKit
import Testing

@Suite("HTTPClient against real nginx and openssl s_server")
final class HTTPClientTests {
    let directory: URL

    init() throws {
        directory = try TemporaryDirectory.make("net-http")
    }

    /// Servers are stopped by each test's `defer` (and by ManagedProcess's deinit); then the
    /// folder with their configs, logs and keys goes.
    deinit { try? FileManager.default.removeItem(at: directory) }

    static let nginxBody = """
    location = /json {
        default_type application/json;
        add_header X-Switchover "from-nginx";
        return 200 '{"ok":true,"answer":42}';
    }
    location = /connection { return 200 "$connection"; }
    location = /big { return 200 "0123456789012345678901234567890123456789"; }
    location = /status503 { return 503 "unavailable"; }
    # nginx reads a request body only when proxying: forward to /dump, which answers with
    # what arrived, carried in headers.
    location = /echo {
        proxy_set_header X-Echo-Body $request_body;
        proxy_set_header X-Echo-Method $request_method;
        proxy_set_header X-Echo-Test $http_x_test;
        proxy_pass http://127.0.0.1:$server_port/dump;
    }
    location = /dump { return 200 "method=$http_x_echo_method test=$http_x_echo_test body=$http_x_echo_body"; }
    """

    func nginx() async throws -> NginxServer {
        try await NginxServer.start(name: "http", body: Self.nginxBody, directory: directory.appendingPathComponent("nginx"))
    }

    func client(_ tls: TLSConfiguration = .systemTrust, maxResponseBytes: Int = 1 << 20) -> HTTPClient {
        HTTPClient(configuration: .init(tls: tls, connectTimeout: .seconds(2), timeout: .seconds(5),
                                        maxResponseBytes: maxResponseBytes),
                   logger: Logger(label: "test.http"))
    }

    @Test("GET returns status, body, headers and timing")
    func getWithBodyAndHeaders() async throws {
        let server = try await nginx()
        defer { server.stopInBackground() }
        let response = try await client().get(server.baseURL + "/json")
        #expect(response.status == 200)
        #expect(response.text == #"{"ok":true,"answer":42}"#)
        #expect(response.header("x-switchover") == "from-nginx")
        #expect(response.header("Content-Type") == "application/json")
        #expect(response.totalTime > .zero && response.totalTime < .seconds(2))
    }

    @Test("a 503 is a response, not an error")
    func serverErrorIsAResponse() async throws {
        let server = try await nginx()
        defer { server.stopInBackground() }
        let response = try await client().get(server.baseURL + "/status503")
        #expect(response.status == 503)
        #expect(response.text == "unavailable")
    }

    @Test("POST delivers method, body and a custom header to the server")
    func postReachesServer() async throws {
        let server = try await nginx()
        defer { server.stopInBackground() }
        let response = try await client().post(server.baseURL + "/echo", body: Data("weights=blue:90,green:10".utf8),
                                               headers: [HTTPHeader("X-Test", "step-3")])
        #expect(response.status == 200)
        #expect(response.text == "method=POST test=step-3 body=weights=blue:90,green:10")
    }

    @Test("any method: PUT with a body")
    func putWithBody() async throws {
        let server = try await nginx()
        defer { server.stopInBackground() }
        let response = try await client().execute(HTTPRequest(method: "put", url: server.baseURL + "/echo",
                                                              body: Data("x".utf8)))
        #expect(response.text == "method=PUT test= body=x")
    }

    @Test("a reused client keeps its connection alive between requests")
    func connectionReuse() async throws {
        let server = try await nginx()
        defer { server.stopInBackground() }
        let http = client()
        var connections: Set<String> = []
        let (_, elapsed) = try await measure {
            for _ in 0..<50 {
                let response = try await http.get(server.baseURL + "/connection")
                #expect(response.status == 200)
                connections.insert(response.text)
            }
        }
        // nginx numbers its connections: one number for 50 requests means one connection.
        #expect(connections.count == 1)
        #expect(elapsed < .seconds(5), "50 loopback requests took \(elapsed)")
    }

    @Test("Authorization values never reach the log")
    func secretsAreNotLogged() async throws {
        let server = try await nginx()
        defer { server.stopInBackground() }
        let (logger, records) = capturingLogger()
        let http = HTTPClient(configuration: .init(), logger: logger)
        _ = try await http.get(server.baseURL + "/json", headers: [HTTPHeader("Authorization", "Bearer s3cr3t-token")])
        _ = try? await http.get("http://127.0.0.1:\(try Loopback.freePort())/",
                                headers: [HTTPHeader("Authorization", "Bearer s3cr3t-token")])
        #expect(!records.all.isEmpty, "the client logs requests at trace level")
        #expect(records.all.allSatisfy { !$0.contains("s3cr3t") })
        #expect(!"\(HTTPHeader("Authorization", "Bearer s3cr3t-token"))".contains("s3cr3t"))
    }

    @Test("a port nobody listens on: connectionRefused, quickly")
    func connectionRefused() async throws {
        let port = try Loopback.freePort()
        let url = "http://127.0.0.1:\(port)/"
        let (error, elapsed) = await measure {
            await #expect(throws: HTTPError.self) { _ = try await client().get(url) }
        }
        #expect(error?.code == .connectionRefused)
        #expect(error?.url == url)
        #expect(error?.method == "GET")
        #expect(error?.osErrno == ECONNREFUSED)
        #expect(elapsed < .seconds(1))
    }

    @Test("a peer that accepts but never answers: timeout, about at the timeout")
    func timeout() async throws {
        let silent = try SilentListener()
        let request = HTTPRequest(url: "http://127.0.0.1:\(silent.port)/", timeout: .milliseconds(500))
        let (error, elapsed) = await measure {
            await #expect(throws: HTTPError.self) { _ = try await client().execute(request) }
        }
        #expect(error?.code == .timeout)
        #expect(elapsed >= .milliseconds(450) && elapsed < .milliseconds(1500), "took \(elapsed)")
    }

    @Test("waiting requests do not block the cooperative thread pool")
    func doesNotBlockCooperativePool() async throws {
        let silent = try SilentListener()
        let http = client()
        let request = HTTPRequest(url: "http://127.0.0.1:\(silent.port)/", timeout: .seconds(2))
        let returned = Counter()  // hanging requests that have come back (each after its 2 s timeout)
        try await withThrowingTaskGroup(of: Void.self) { group in
            // More hanging requests than the pool has threads (one per core).
            for _ in 0..<(ProcessInfo.processInfo.activeProcessorCount + 4) {
                group.addTask {
                    _ = try? await http.execute(request)
                    returned.increment()
                }
            }
            try await Task.sleep(for: .milliseconds(200))
            // If the transfers held pool threads, these child tasks could not run until they end:
            // not before a hanging request has come back, 2 s after it began. Timed against that,
            // not against a stopwatch, since the tests running in parallel share this pool and
            // may keep it busy for a moment; this is the pool, so Stopwatch's thread cannot time it.
            let started = ContinuousClock.now
            _ = await withTaskGroup(of: Int.self) { inner in
                for i in 0..<8 { inner.addTask { i } }
                return await inner.reduce(0, +)
            }
            let elapsed = ContinuousClock.now - started
            let back = returned.current
            #expect(back == 0, "the child tasks waited \(elapsed) for a pool thread, until \(back) hanging requests had come back")
            try await group.waitForAll()
        }
    }

    @Test("hanging requests run side by side: many at once all time out after one timeout, not in turns")
    func hangingRequestsRunInParallel() async throws {
        let silent = try SilentListener()
        let http = client()
        let request = HTTPRequest(url: "http://127.0.0.1:\(silent.port)/", timeout: .milliseconds(700))
        let count = 3 * ProcessInfo.processInfo.activeProcessorCount + 2
        let (codes, elapsed) = await measure {
            await withTaskGroup(of: HTTPError.Code?.self) { group in
                for _ in 0..<count {
                    group.addTask {
                        do { _ = try await http.execute(request); return nil } catch { return (error as? HTTPError)?.code }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
        }
        #expect(codes.count == count && codes.allSatisfy { $0 == .timeout })
        #expect(elapsed < .milliseconds(1400), "\(count) requests of 700 ms took \(elapsed)")
    }

    @Test("cancelling the task aborts the transfer")
    func cancellation() async throws {
        let silent = try SilentListener()
        let http = client()
        let request = HTTPRequest(url: "http://127.0.0.1:\(silent.port)/", timeout: .seconds(20))
        let task = Task { try await http.execute(request) }
        try await Task.sleep(for: .milliseconds(200))
        let (result, elapsed) = await measure {
            task.cancel()
            return await task.result
        }
        #expect(throws: CancellationError.self) { try result.get() }
        #expect(elapsed < .seconds(3), "cancellation took \(elapsed)")
    }

    @Test("a body larger than the limit fails instead of filling memory")
    func responseTooLarge() async throws {
        let server = try await nginx()
        defer { server.stopInBackground() }
        let error = await #expect(throws: HTTPError.self) {
            _ = try await client(maxResponseBytes: 10).get(server.baseURL + "/big")
        }
        #expect(error?.code == .responseTooLarge)
    }

    @Test("bad input is refused before anything is sent")
    func badInput() async throws {
        let ftp = await #expect(throws: HTTPError.self) { _ = try await client().get("ftp://127.0.0.1/") }
        #expect(ftp?.code == .badURL)
        let injected = await #expect(throws: HTTPError.self) {
            _ = try await client().get("http://127.0.0.1:1/", headers: [HTTPHeader("X-A", "1\r\nX-B: 2")])
        }
        #expect(injected?.code == .invalidRequest)
    }

    @Test("credentials in a URL never appear in an error")
    func urlCredentialsRedacted() async throws {
        let port = try Loopback.freePort()
        let error = await #expect(throws: HTTPError.self) {
            _ = try await client().get("http://admin:hunter2@127.0.0.1:\(port)/stats")
        }
        #expect(error?.url == "http://127.0.0.1:\(port)/stats")
        #expect(!"\(String(describing: error))".contains("hunter2"))
    }

    // MARK: - TLS

    struct TLSFixture {
        let pki: TestPKI
        let root: TestCertificate
        let intermediate: TestCertificate
        let server: TestCertificate
        let serverChain: URL
        let rootBundle: URL
    }

    func makePKI(keyType: TestPKI.KeyType = .ecP256, serverSANs: [String] = ["127.0.0.1", "localhost"]) async throws -> TLSFixture {
        let pki = try TestPKI(directory: directory.appendingPathComponent("pki"))
        let root = try await pki.makeRoot(name: "root", keyType: keyType)
        let intermediate = try await pki.makeIntermediate(name: "intermediate", issuer: root, keyType: keyType)
        let server = try await pki.makeLeaf(name: "server", sans: serverSANs, issuer: intermediate, keyType: keyType,
                                      usage: .server)
        return TLSFixture(pki: pki, root: root, intermediate: intermediate, server: server,
                          serverChain: try pki.bundle([intermediate], named: "chain.pem"),
                          rootBundle: try pki.bundle([root], named: "root-bundle.pem"))
    }

    @Test("HTTPS verifies against the right CA file", arguments: [TestPKI.KeyType.ecP256, .rsa2048])
    func httpsVerified(keyType: TestPKI.KeyType) async throws {
        let fx = try await makePKI(keyType: keyType)
        let server = try await OpenSSLServer.start(name: "ok", certificate: fx.server, chain: fx.serverChain, directory: directory)
        defer { server.stopInBackground() }
        let response = try await client(TLSConfiguration(caFile: fx.rootBundle.path)).get(server.url)
        #expect(response.status == 200)
        #expect(response.text.contains("s_server"))
    }

    @Test("HTTPS with a certificate from another CA fails verification")
    func httpsWrongCA() async throws {
        let fx = try await makePKI()
        let otherRoot = try await fx.pki.makeRoot(name: "other-root")
        let server = try await OpenSSLServer.start(name: "wrong-ca", certificate: fx.server, chain: fx.serverChain,
                                                   directory: directory)
        defer { server.stopInBackground() }
        let error = await #expect(throws: HTTPError.self) {
            _ = try await client(TLSConfiguration(caFile: otherRoot.certificateFile.path)).get(server.url)
        }
        #expect(error?.code == .tlsVerificationFailed)
        #expect(error?.message.isEmpty == false)
    }

    @Test("HTTPS with no CA file uses the system store: a private CA does not verify (no implicit insecure)")
    func httpsSystemTrustRejectsPrivateCA() async throws {
        let fx = try await makePKI()
        let server = try await OpenSSLServer.start(name: "system", certificate: fx.server, chain: fx.serverChain,
                                                   directory: directory)
        defer { server.stopInBackground() }
        let error = await #expect(throws: HTTPError.self) { _ = try await client().get(server.url) }
        #expect(error?.code == .tlsVerificationFailed)
    }

    @Test("HTTPS whose certificate names another host fails verification")
    func httpsHostMismatch() async throws {
        let fx = try await makePKI(serverSANs: ["other.example"])
        let server = try await OpenSSLServer.start(name: "mismatch", certificate: fx.server, chain: fx.serverChain,
                                                   directory: directory)
        defer { server.stopInBackground() }
        let error = await #expect(throws: HTTPError.self) {
            _ = try await client(TLSConfiguration(caFile: fx.rootBundle.path)).get(server.url)
        }
        #expect(error?.code == .tlsVerificationFailed)
    }

    @Test("mutual TLS: without a client certificate it fails, with one it succeeds")
    func mutualTLS() async throws {
        let fx = try await makePKI()
        let clientCert = try await fx.pki.makeLeaf(name: "client", sans: ["switchover.test"], issuer: fx.intermediate,
                                             usage: .client)
        let clientChain = try fx.pki.bundle([clientCert, fx.intermediate], named: "client-chain.pem")
        let server = try await OpenSSLServer.start(name: "mtls", certificate: fx.server, chain: fx.serverChain,
                                                   clientCA: fx.rootBundle, directory: directory)
        defer { server.stopInBackground() }

        let anonymous = await #expect(throws: HTTPError.self) {
            _ = try await client(TLSConfiguration(caFile: fx.rootBundle.path)).get(server.url)
        }
        #expect(anonymous.map { [.tlsHandshakeFailed, .receiveFailed].contains($0.code) } == true,
                "got \(String(describing: anonymous))")

        let authenticated = client(TLSConfiguration(caFile: fx.rootBundle.path,
                                                    clientCertificateFile: clientChain.path,
                                                    clientKeyFile: clientCert.keyFile.path))
        let response = try await authenticated.get(server.url)
        #expect(response.status == 200)
    }

    @Test("an unreadable client key is a TLS configuration error")
    func missingClientKey() async throws {
        let fx = try await makePKI()
        let server = try await OpenSSLServer.start(name: "badkey", certificate: fx.server, chain: fx.serverChain,
                                                   directory: directory)
        defer { server.stopInBackground() }
        let error = await #expect(throws: HTTPError.self) {
            _ = try await client(TLSConfiguration(caFile: fx.rootBundle.path,
                                                  clientCertificateFile: fx.server.certificateFile.path,
                                                  clientKeyFile: directory.appendingPathComponent("missing.pem").path))
                .get(server.url)
        }
        #expect(error?.code == .tlsConfiguration)
    }
}
