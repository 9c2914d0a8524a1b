import Foundation
import Synchronization

/// A real moto server (`moto[server]` 5.2.5 from the venv scripts/setup makes, `Tools.motoServer()`)
/// on 127.0.0.1 and a free port: one process emulating Route53, ELBv2, EC2, IAM, STS and the
/// rest of AWS's APIs, started by `await MotoServer.start()` and stopped by its PID.
///
/// What moto 5.2.5 does, seen here (issue 15), so a test does not chase it:
/// - a change batch is `INSYNC` at once (even for an unknown change id): the PENDING path needs
///   `AWSStandIn`'s held-back polls;
/// - out-of-range weights are accepted (Route53 300, ALB 1001): range checks are ours;
/// - with IAM authentication on (`enableIAMAuthentication()`) POST signatures are checked as
///   AWS does (`SignatureDoesNotMatch`, `InvalidClientTokenId`), but every Route53 GET is
///   refused with 403, even when correctly signed: test refusals on a POST or on ELBv2, and GETs
///   with authentication off;
/// - moto routes a request to a service by the credential scope of its `Authorization` header:
///   an unsigned request lands in its S3 emulation (`NoSuchBucket`);
/// - its Route53 auth errors come as `<ErrorResponse><Errors><Error>`, which botocore itself
///   cannot parse (boto3 reports an empty error code), while its other Route53 errors use
///   AWS's `<ErrorResponse><Error>`.
///
/// Fixtures (a hosted zone, a VPC with an ALB) and read-backs are made with boto3 from the same
/// venv (`python(_:)`), never through the code under test.
public final class MotoServer: Sendable {
    public let port: Int
    public let directory: URL
    private let process: ManagedProcess
    /// The credentials `python(_:)` signs with: anything while authentication is off, the IAM
    /// user's once `enableIAMAuthentication()` has made one.
    private let fixtureCredentials = Mutex<(id: String, secret: String)>(("testing", "testing"))

    /// `http://127.0.0.1:PORT`, the endpoint every client is pointed at.
    public var endpoint: String { "http://127.0.0.1:\(port)" }
    public var isRunning: Bool { process.isRunning }

    /// Starts moto and returns once it answers on its port.
    public static func start(in parent: URL? = nil) async throws -> MotoServer {
        let server = try MotoServer(parent: parent)
        do {
            // moto imports every service it emulates before it listens: seconds, more under load.
            try await Loopback.waitForPort(server.port, of: server.process, timeout: 90)
        } catch {
            server.process.stopInBackground()
            throw error
        }
        return server
    }

    private init(parent: URL?) throws {
        let motoServer = try Tools.motoServer()
        let base = try parent ?? TemporaryDirectory.make("moto")
        directory = base.appendingPathComponent("moto-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        port = try Loopback.freePort()
        var environment = ProcessInfo.processInfo.environment
        // Every test's moto starts with authentication off, whatever the caller's shell says.
        environment["INITIAL_NO_AUTH_ACTION_COUNT"] = nil
        environment["MOTO_CALL_RESET_API"] = nil
        process = try ManagedProcess(name: "moto_server", executable: motoServer,
                                     arguments: ["-H", "127.0.0.1", "-p", "\(port)"], environment: environment,
                                     logFile: directory.appendingPathComponent("moto.log"))
    }

    /// SIGTERM, then SIGKILL after a grace; returns once moto has exited.
    public func stop() async { await process.stop() }

    /// For a `defer`: SIGTERM now, SIGKILL later from a thread of its own.
    public func stopInBackground() { process.stopInBackground() }

    /// The last lines moto logged (one line per request), for failure messages.
    public func logTail(lines: Int = 20) -> String { process.logTail(lines: lines) }

    /// Runs `script` with the venv's Python (boto3, botocore) and returns its standard output.
    /// The script starts with `json`, `os`, `sys`, `boto3`, `botocore` imported, `ENDPOINT` set
    /// to this server and `client(service, region="us-east-1")` making a boto3 client for it.
    /// Throws with the script's standard error when it exits non-zero.
    public func python(_ script: String) async throws -> String {
        let credentials = fixtureCredentials.withLock { $0 }
        return try await BotoPython.run(script, environment: [
            "MOTO_ENDPOINT": endpoint, "AWS_ACCESS_KEY_ID": credentials.id, "AWS_SECRET_ACCESS_KEY": credentials.secret,
        ])
    }

    /// What `makeALB` made: the listener's ARN and the target groups'.
    public struct ALBListener: Decodable, Sendable {
        public var listener: String
        public var blue: String
        public var green: String
    }

    /// Makes, with boto3, a VPC with two subnets, an Application Load Balancer, target groups
    /// `blue` and `green`, and an HTTP listener whose forward action sends them 999 and 0 (with
    /// target-group stickiness for `stickySeconds` when given).
    public func makeALB(region: String = "us-east-1", stickySeconds: Int? = nil) async throws -> ALBListener {
        let stickiness = stickySeconds.map { #", "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": \#($0)}"# } ?? ""
        let output = try await python("""
            ec2 = client("ec2", \(BotoPython.literal(region)))
            elb = client("elbv2", \(BotoPython.literal(region)))
            vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
            subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=\(BotoPython.literal(region)) + zone)["Subnet"]["SubnetId"]
                       for cidr, zone in (("10.0.1.0/24", "a"), ("10.0.2.0/24", "b"))]
            lb = elb.create_load_balancer(Name="switchover", Subnets=subnets, Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
            groups = {name: elb.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
                      for name in ("blue", "green")}
            listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[{"Type": "forward",
                "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": groups["blue"], "Weight": 999},
                                                   {"TargetGroupArn": groups["green"], "Weight": 0}]\(stickiness)}}])["Listeners"][0]["ListenerArn"]
            print(json.dumps({"listener": listener, "blue": groups["blue"], "green": groups["green"]}))
            """)
        return try JSONDecoder().decode(ALBListener.self, from: Data(output.utf8))
    }

    /// Switches moto's IAM authentication on (issue 15's recipe): with authentication still off,
    /// creates an IAM user allowed everything and an access key for it, then
    /// `POST /moto-api/reset-auth` with body `0` (no more unauthenticated calls). Returns that
    /// key; from then on `python(_:)` signs with it.
    @discardableResult
    public func enableIAMAuthentication(userName: String = "switchover") async throws -> (accessKeyId: String, secretAccessKey: String) {
        let output = try await python("""
            iam = client("iam")
            iam.create_user(UserName=\(BotoPython.literal(userName)))
            iam.put_user_policy(UserName=\(BotoPython.literal(userName)), PolicyName="everything", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
            key = iam.create_access_key(UserName=\(BotoPython.literal(userName)))["AccessKey"]
            print(json.dumps({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))
            """)
        guard let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: String],
              let id = object["id"], let secret = object["secret"] else {
            throw TestKitError("moto: no access key in \(output)")
        }
        try await resetAuth("0")
        fixtureCredentials.withLock { $0 = (id, secret) }
        return (id, secret)
    }

    /// Switches IAM authentication off again (`reset-auth` with `inf`: unlimited unauthenticated
    /// calls), for read-backs moto would refuse with it on (every Route53 GET).
    public func disableIAMAuthentication() async throws {
        try await resetAuth("inf")
    }

    /// `POST /moto-api/reset-auth` with `count` (moto's INITIAL_NO_AUTH_ACTION_COUNT: how many
    /// more calls go unauthenticated). werkzeug reads a form-encoded body as a form and leaves
    /// moto an empty one, so the body goes as text/plain.
    private func resetAuth(_ count: String) async throws {
        let answer = try await Loopback.httpExchange(port: port, request:
            "POST /moto-api/reset-auth HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: text/plain\r\n"
            + "Content-Length: \(count.utf8.count)\r\nConnection: close\r\n\r\n\(count)")
        guard answer.hasPrefix("HTTP/1.1 200") else { throw TestKitError("moto: reset-auth answered \(answer.prefix(300))") }
    }
}

/// The venv's Python (boto3 and botocore from scripts/setup's moto venv), for fixtures,
/// read-backs and botocore's reference signatures. Runs off the cooperative pool (`OwnThread`),
/// standard output and standard error kept apart (in files: a chatty script cannot block on a
/// full pipe).
public enum BotoPython {
    /// The preamble every script gets (see `MotoServer.python(_:)`).
    static let preamble = """
        import json, os, sys
        import boto3, botocore
        ENDPOINT = os.environ.get("MOTO_ENDPOINT")
        def client(service, region="us-east-1", **kwargs):
            return boto3.client(service, endpoint_url=ENDPOINT, region_name=region,
                                aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                                aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"), **kwargs)

        """

    /// Runs the preamble and `script`, with `environment` added to a clean one (no AWS variables
    /// of the caller's), and returns standard output.
    public static func run(_ script: String, environment: [String: String] = [:], input: Data? = nil) async throws -> String {
        let python = try Tools.motoPython()
        return try await OwnThread.run("boto3") {
            try runBlocking(python, preamble + script, environment: environment, input: input)
        }
    }

    /// `text` as a Python string literal (JSON's escaping is valid Python).
    public static func literal(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }

    private static func runBlocking(_ python: String, _ script: String, environment: [String: String], input: Data?) throws -> String {
        let folder = try TemporaryDirectory.make("boto")
        defer { try? FileManager.default.removeItem(at: folder) }
        let scriptURL = folder.appendingPathComponent("script.py")
        try Data(script.utf8).write(to: scriptURL)
        let outURL = folder.appendingPathComponent("stdout")
        let errURL = folder.appendingPathComponent("stderr")
        let inURL = folder.appendingPathComponent("stdin")
        try (input ?? Data()).write(to: inURL)
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        let stdin = try FileHandle(forReadingFrom: inURL)
        defer {
            try? out.close()
            try? err.close()
            try? stdin.close()
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [scriptURL.path]
        var clean = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("AWS_") }
        clean["PYTHONDONTWRITEBYTECODE"] = "1"
        process.environment = clean.merging(environment) { _, new in new }
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdin
        try process.run()
        process.waitUntilExit()
        let stdout = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0 else {
            let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
            throw TestKitError("python (boto3) exited \(process.terminationStatus):\n\(stderr.suffix(3000))")
        }
        return stdout
    }
}

extension Tools {
    /// moto_server from the venv scripts/setup makes (`SWITCHOVER_MOTO_SERVER` overrides).
    public static func motoServer() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["SWITCHOVER_MOTO_SERVER"],
           FileManager.default.isExecutableFile(atPath: explicit) { return explicit }
        let home = FileManager.default.homeDirectoryForCurrentUser.path
        let recorded = home + "/.cache/switchover/moto-server-path"
        if let path = try? String(contentsOfFile: recorded, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
           FileManager.default.isExecutableFile(atPath: path) { return path }
        throw TestKitError("moto_server is not installed: run scripts/setup (it installs moto[server] and boto3 into \(home)/.cache/switchover/moto-venv)")
    }

    /// The Python of moto's venv (beside moto_server), which has boto3 and botocore.
    public static func motoPython() throws -> String {
        let python = URL(fileURLWithPath: try motoServer()).deletingLastPathComponent().appendingPathComponent("python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw TestKitError("no python beside moto_server (\(python)): run scripts/setup")
        }
        return python
    }
}
