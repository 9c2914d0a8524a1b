import Foundation
import SwitchoverAWS
import SwitchoverTestKit
import Testing

/// What an operator sees when AWS says no: against a real moto (an unknown zone, moto stopped,
/// its IAM authentication refusing a wrong secret) and, for throttling, which moto never does,
/// against `AWSStandIn` — a STAND-IN proxy that answers AWS's `Throttling` error N times before
/// passing requests on to the real moto.
@Suite struct AWSErrorTests {
    static func upsert(_ weight: Int) -> [Route53Change] {
        [Route53Change(.upsert, Route53RecordSet(name: "app.example.com.", type: "CNAME", setIdentifier: "blue", weight: weight,
                                                 ttl: 60, values: ["blue-ingress.example.com"]))]
    }

    @Test("an unknown hosted zone is .notFound, with moto's NoSuchHostedZone and the zone named")
    func unknownHostedZone() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let route53 = Route53Client(client: awsClient(), endpoint: moto.endpoint)
        let error = await #expect(throws: AWSError.self) { _ = try await route53.getHostedZone(id: "ZNOSUCHZONE0001") }
        #expect(error?.kind == .notFound)
        #expect(error?.code == "NoSuchHostedZone")
        #expect(error?.httpStatus == 404)
        #expect(error?.operation == "GetHostedZone")
        #expect(error.map { "\($0)" }?.contains("ZNOSUCHZONE0001") == true)

        let listing = await #expect(throws: AWSError.self) {
            _ = try await route53.listResourceRecordSets(hostedZoneId: "ZNOSUCHZONE0001")
        }
        #expect(listing?.kind == .notFound)
        let change = await #expect(throws: AWSError.self) {
            _ = try await route53.changeResourceRecordSets(hostedZoneId: "ZNOSUCHZONE0001", changes: Self.upsert(10))
        }
        #expect(change?.kind == .notFound)
        #expect(change.map { "\($0)" }?.contains("hosted zone ZNOSUCHZONE0001") == true)
    }

    @Test("moto stopped: .unavailable, saying the connection was refused")
    func motoDown() async throws {
        let moto = try await MotoServer.start()
        let endpoint = moto.endpoint
        await moto.stop()
        #expect(!moto.isRunning)
        let route53 = Route53Client(client: awsClient(), endpoint: endpoint)
        let error = await #expect(throws: AWSError.self) { _ = try await route53.getChange(id: "C1") }
        #expect(error?.kind == .unavailable)
        #expect(error?.httpStatus == nil)
        #expect(error?.message.contains("connection refused") == true)
        let elb = ELBv2Client(client: awsClient(), region: "us-east-1", endpoint: endpoint)
        let elbError = await #expect(throws: AWSError.self) { _ = try await elb.describeListeners(listenerArns: ["arn:x"]) }
        #expect(elbError?.kind == .unavailable)
    }

    @Test("an endpoint that accepts and never answers: a client with a request time limit gives up within it, as .unavailable, and the client it came from keeps its own")
    func requestTimeLimit() async throws {
        let silent = try SilentListener()
        let base = awsClient(retries: 0)
        let limited = base.with(retry: .init(maxRetries: 0), requestTimeout: .milliseconds(400))
        #expect(limited.requestTimeout == .milliseconds(400) && base.requestTimeout == nil)
        let route53 = Route53Client(client: limited, endpoint: "http://127.0.0.1:\(silent.port)")
        let started = ContinuousClock.now
        let error = await #expect(throws: AWSError.self) { _ = try await route53.getChange(id: "C1") }
        let took = ContinuousClock.now - started
        #expect(error?.kind == .unavailable, "\(error.map { "\($0)" } ?? "")")
        #expect(took >= .milliseconds(400) && took < .seconds(3), "gave up after \(took), not the HTTP client's 20 s")
    }

    @Test("with moto's IAM authentication on, a wrong secret is refused on ChangeResourceRecordSets and on ELBv2 as .authentication, with moto's own code")
    func wrongSecretRefused() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let zone = try await Route53MotoTests.zone(on: moto)
        let key = try await moto.enableIAMAuthentication()

        let wrong = AWSCredentials(accessKeyId: key.accessKeyId, secretAccessKey: "not-" + key.secretAccessKey)
        let route53 = Route53Client(client: awsClient(wrong), endpoint: moto.endpoint)
        let error = await #expect(throws: AWSError.self) {
            _ = try await route53.changeResourceRecordSets(hostedZoneId: zone, changes: Self.upsert(128))
        }
        #expect(error?.kind == .authentication)
        #expect(error?.code == "SignatureDoesNotMatch")
        #expect(error?.httpStatus == 403)
        #expect(error.map { "\($0)" }?.contains("SignatureDoesNotMatch") == true)
        #expect(error?.attempts == 1)
        for secret in ["not-" + key.secretAccessKey, key.secretAccessKey] {
            #expect(error.map { "\($0)" }?.contains(secret) == false)
        }

        let elbWrong = ELBv2Client(client: awsClient(wrong), region: "us-east-1", endpoint: moto.endpoint)
        let elbWrongError = await #expect(throws: AWSError.self) { _ = try await elbWrong.describeListeners(listenerArns: ["arn:x"]) }
        #expect(elbWrongError?.kind == .authentication)
        #expect(elbWrongError?.code == "SignatureDoesNotMatch")

        let unknown = AWSCredentials(accessKeyId: "AKIAUNKNOWNKEY000000", secretAccessKey: key.secretAccessKey)
        let elb = ELBv2Client(client: awsClient(unknown), region: "us-east-1", endpoint: moto.endpoint)
        let elbError = await #expect(throws: AWSError.self) { _ = try await elb.describeListeners(listenerArns: ["arn:x"]) }
        #expect(elbError?.kind == .authentication)
        #expect(elbError?.code == "InvalidClientTokenId")

        // The right key passes the same check: the refusal was the secret's, not the signer's.
        let right = Route53Client(client: awsClient(AWSCredentials(accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey)),
                                  endpoint: moto.endpoint)
        let change = try await right.changeResourceRecordSets(hostedZoneId: zone, changes: Self.upsert(128))
        #expect(change.status == .insync)

        // moto 5.2.5 refuses every Route53 GET while authentication is on, even correctly signed:
        // ours (which reads moto's <Errors><Error> shape) and boto3's (which cannot: empty code).
        let get = await #expect(throws: AWSError.self) { _ = try await right.getHostedZone(id: zone) }
        #expect(get?.kind == .authentication && get?.code == "SignatureDoesNotMatch")
        let boto = try await moto.python("""
            try:
                client("route53").list_resource_record_sets(HostedZoneId=\(BotoPython.literal(zone)))
                print("allowed")
            except botocore.exceptions.ClientError as error:
                print(error.response["ResponseMetadata"]["HTTPStatusCode"], repr(error.response["Error"].get("Code")))
            """)
        #expect(boto.trimmingCharacters(in: .whitespacesAndNewlines) == "403 ''")
        // so the weight is read back with it off again.
        try await moto.disableIAMAuthentication()
        let weight = try await moto.python("""
            sets = client("route53").list_resource_record_sets(HostedZoneId=\(BotoPython.literal(zone)))["ResourceRecordSets"]
            print([s["Weight"] for s in sets if s.get("SetIdentifier") == "blue"][0])
            """)
        #expect(weight.trimmingCharacters(in: .whitespacesAndNewlines) == "128")
    }

    @Test("a Route53 weight moto would accept (300) is refused before anything is sent")
    func route53WeightOutOfRange() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let zone = try await Route53MotoTests.zone(on: moto)
        let route53 = Route53Client(client: awsClient(), endpoint: moto.endpoint)
        let error = await #expect(throws: AWSError.self) {
            _ = try await route53.changeResourceRecordSets(hostedZoneId: zone, changes: Self.upsert(300))
        }
        #expect(error?.kind == .invalidRequest)
        #expect(error?.message.contains("300") == true)
        #expect(try await Route53MotoTests.botoWeights(moto, zone: zone) == ["blue": 255, "green": 0])
    }

    @Test("throttled twice, then through: the change is retried with backoff and lands once")
    func throttledThenThrough() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let zone = try await Route53MotoTests.zone(on: moto)
        let standIn = try await AWSStandIn.start(upstreamPort: moto.port)
        defer { standIn.stopInBackground() }
        let (logger, lines) = capturingLogger()
        let route53 = Route53Client(client: awsClient(retries: 3, logger: logger), endpoint: standIn.endpoint)

        try await standIn.throttle(next: 2)
        let change = try await route53.changeResourceRecordSets(hostedZoneId: zone, changes: Self.upsert(77))
        #expect(change.status == .insync)
        #expect(try await standIn.counts() == .init(throttled: 2, forwarded: 1, heldPending: 0))
        #expect(lines.all.filter { $0.contains("throttled; retrying") }.count == 2)
        #expect(try await Route53MotoTests.botoWeights(moto, zone: zone)["blue"] == 77)

        // PriorRequestNotComplete (Route53's "a change is still being applied") is throttling too.
        try await standIn.throttle(next: 1, code: "PriorRequestNotComplete")
        _ = try await route53.changeResourceRecordSets(hostedZoneId: zone, changes: Self.upsert(78))
        #expect(try await Route53MotoTests.botoWeights(moto, zone: zone)["blue"] == 78)
    }

    @Test("throttled beyond the retry budget: .throttled after 1 + retries attempts, nothing applied")
    func throttledBeyondBudget() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let zone = try await Route53MotoTests.zone(on: moto)
        let standIn = try await AWSStandIn.start(upstreamPort: moto.port)
        defer { standIn.stopInBackground() }
        let route53 = Route53Client(client: awsClient(retries: 2), endpoint: standIn.endpoint)

        try await standIn.throttle(next: 10)
        let error = await #expect(throws: AWSError.self) {
            _ = try await route53.changeResourceRecordSets(hostedZoneId: zone, changes: Self.upsert(5))
        }
        #expect(error?.kind == .throttled)
        #expect(error?.code == "Throttling")
        #expect(error?.attempts == 3)
        #expect(error.map { "\($0)" }?.contains("after 3 attempts") == true)
        #expect(try await standIn.counts() == .init(throttled: 3, forwarded: 0, heldPending: 0))
        #expect(try await Route53MotoTests.botoWeights(moto, zone: zone)["blue"] == 255)

        // HTTP 429 with no code the client knows is throttling too.
        try await standIn.throttle(next: 10, code: "SomethingNew", status: 429)
        let tooMany = await #expect(throws: AWSError.self) { _ = try await route53.getChange(id: "C1") }
        #expect(tooMany?.kind == .throttled)
    }

    @Test("a 500 is .unavailable at once, never retried: unlike a throttled request, it may have been applied")
    func serverErrorNotRetried() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let standIn = try await AWSStandIn.start(upstreamPort: moto.port)
        defer { standIn.stopInBackground() }
        let route53 = Route53Client(client: awsClient(retries: 3), endpoint: standIn.endpoint)
        try await standIn.throttle(next: 1, code: "InternalFailure", status: 500)
        let error = await #expect(throws: AWSError.self) { _ = try await route53.getChange(id: "C1") }
        #expect(error?.kind == .unavailable)
        #expect(error?.code == "InternalFailure" && error?.httpStatus == 500)
        #expect(error?.attempts == 1)
        #expect(try await standIn.counts() == .init(throttled: 1, forwarded: 0, heldPending: 0))
        // The next call goes through to moto.
        #expect(try await route53.getChange(id: "C1").status == .insync)
    }

    @Test("a session token an error message echoes is redacted from the error and from the logs")
    func echoedTokenRedacted() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let standIn = try await AWSStandIn.start(upstreamPort: moto.port)
        defer { standIn.stopInBackground() }
        let token = "FwoGZXIvYXdzEXAMPLE-session-token-\(UUID().uuidString)"
        let credentials = AWSCredentials(accessKeyId: "ASIAEXAMPLE", secretAccessKey: "secret-\(UUID().uuidString)", sessionToken: token)
        let (logger, lines) = capturingLogger()
        let route53 = Route53Client(client: awsClient(credentials, retries: 1, logger: logger), endpoint: standIn.endpoint)
        try await standIn.throttle(next: 5, echoSessionToken: true)
        let error = await #expect(throws: AWSError.self) { _ = try await route53.getChange(id: "C1") }
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains("request token: <redacted>"))
        #expect(!text.contains(token))
        #expect(!lines.all.isEmpty)
        #expect(!lines.all.contains { $0.contains(token) || $0.contains("secret-") })
    }

    @Test("the stand-in holds INSYNC back for N GetChange polls (for the router's PENDING path)")
    func pendingHeldBack() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let zone = try await Route53MotoTests.zone(on: moto)
        let standIn = try await AWSStandIn.start(upstreamPort: moto.port)
        defer { standIn.stopInBackground() }
        let route53 = Route53Client(client: awsClient(), endpoint: standIn.endpoint)
        let change = try await route53.changeResourceRecordSets(hostedZoneId: zone, changes: Self.upsert(9))
        try await standIn.holdInsync(polls: 2)
        var statuses: [Route53ChangeInfo.Status] = []
        for _ in 0..<3 { statuses.append(try await route53.getChange(id: change.id).status) }
        #expect(statuses == [.pending, .pending, .insync])
    }
}
