import Foundation
import Logging
import SwitchoverAWS
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverNet
import SwitchoverTestKit
import Testing

/// A configuration folder with clusters blue and green placed by Route53 and ALB sections.
private struct AWSFolder {
    let root: URL
    let policy: String
    let blue: String

    init(policy: String, blueLoadBalancer: String? = nil) throws {
        root = try TemporaryDirectory.make("aws-driver")
        self.policy = policy
        let fm = FileManager.default
        for folder in ["clusters", "policies", "pki"] {
            try fm.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        try Data("not read by the loader\n".utf8).write(to: root.appendingPathComponent("pki/root.pem"))
        var blueText = ""
        for name in ["blue", "green"] {
            let loadBalancer = (name == "blue" ? blueLoadBalancer : nil) ?? """
                    route53: {setIdentifier: \(name), value: \(name)-ingress.example.com}
                    alb: {targetGroupArn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/\(name)/0123456789abcdef"}
                """
            let text = """
                apiVersion: switchover.dev/v1alpha1
                kind: Cluster
                metadata:
                  name: \(name)
                spec:
                  istio:
                    version: "1.27.4"
                  trust:
                    trustDomain: cluster.local
                    rootCerts: ../pki/root.pem
                  loadBalancer:
                \(loadBalancer)

                """
            if name == "blue" { blueText = text }
            try Data(text.utf8).write(to: root.appendingPathComponent("clusters/\(name).yaml"))
        }
        blue = blueText
        try Data(policy.utf8).write(to: root.appendingPathComponent("policies/p.yaml"))
    }

    func load() -> (Configuration, [Diagnostic]) {
        ConfigLoader.load(clustersDirectory: root.appendingPathComponent("clusters").path,
                          policiesDirectory: root.appendingPathComponent("policies").path,
                          drivers: DriverRegistry.standard.descriptions)
    }

    func at(_ marker: String, inBlue: Bool = false) throws -> String {
        let found = try #require(position(of: marker, in: inBlue ? blue : policy))
        let file = root.appendingPathComponent(inBlue ? "clusters/blue.yaml" : "policies/p.yaml").path
        return "\(file):\(found.line):\(found.column)"
    }

    func remove() { try? FileManager.default.removeItem(at: root) }
}

private func policy(_ loadBalancer: String, steps: String = "[1, 50, 100]") -> String {
    """
    apiVersion: switchover.dev/v1alpha1
    kind: Policy
    metadata:
      name: p
    spec:
      loadBalancer:
    \(loadBalancer)
      steps: \(steps)
      bake: 10s
      traffic:
        prometheus:
          url: http://127.0.0.1:9090
          requests: 'sum(istio_requests_total{cluster="$cluster"})'
          errors: 'sum(istio_requests_total{cluster="$cluster",response_code=~"5.."})'

    """
}

private let route53Section = """
        driver: route53
        route53:
          hostedZoneId: Z0123456789
          recordName: app.example.com.
          recordType: CNAME
          region: us-east-1
          endpoint: http://127.0.0.1:5000
    """

@Suite struct AWSDriverConfigTests {
    @Test("a route53 policy and the clusters' route53 sections decode, and plan prints Route53's weights: 1% is 198/2, 100% is 0/255")
    func route53Decodes() throws {
        let folder = try AWSFolder(policy: policy(route53Section))
        defer { folder.remove() }
        let (configuration, diagnostics) = folder.load()
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let chosen = try #require(configuration.policy(named: "p"))
        let spec = try #require(chosen.loadBalancer.settings(as: Route53Spec.self))
        #expect(spec == Route53Spec(hostedZoneId: "Z0123456789", recordName: "app.example.com.", recordType: "CNAME",
                                    region: "us-east-1", endpoint: "http://127.0.0.1:5000"))
        let blue = try #require(configuration.cluster(named: "blue")), green = try #require(configuration.cluster(named: "green"))
        #expect(blue.loadBalancer.sections["route53"]?.spec as? Route53ClusterSpec
                == Route53ClusterSpec(setIdentifier: "blue", value: "blue-ingress.example.com"))
        let plan = CutoverPlan(from: blue, to: green, policy: chosen)
        #expect(plan.steps.map { [$0.weights.fromTotal, $0.weights.toTotal] } == [[198, 2], [255, 255], [0, 255]])
        #expect(plan.steps.map(\.weights.effectivePercentToTarget) == [1, 50, 100])
        #expect(plan.steps[0].weights.all.map(\.server) == ["blue", "green"], "the set identifiers stand as the servers")
        #expect(configuration.validatePair(from: "blue", to: "green", policy: "p").isEmpty)
    }

    @Test("the Route53 translation never writes 0 on both records and hits every whole percent within plan's rounding")
    func route53Translation() {
        let translation = Route53Driver().translation
        #expect(translation.maxWeight == 255)
        for tenth in 0...1000 {
            let percent = Double(tenth) / 10
            let weights = translation.weights(percentToTarget: percent, from: ["blue"], to: ["green"])
            #expect(weights.fromTotal + weights.toTotal > 0, "\(percent)%: 0/0 is an equal split in Route53")
            #expect((0...255).contains(weights.fromTotal) && (0...255).contains(weights.toTotal))
            if tenth % 10 == 0 {
                #expect(abs(weights.effectivePercentToTarget - percent) < 0.2, "\(percent)% -> \(weights)")
            }
        }
        #expect(translation.weights(percentToTarget: 0, from: ["blue"], to: ["green"]).toTotal == 0)
        #expect(translation.weights(percentToTarget: 0, from: ["blue"], to: ["green"]).fromTotal == 255)
        #expect(ALBDriver().translation.weights(percentToTarget: 1, from: ["b"], to: ["g"]).effectivePercentToTarget == 1)
    }

    @Test("route53 sections are checked at their FILE:LINE:COL: unknown keys with a did-you-mean, missing keys, a bad type, a bad override")
    func route53Errors() throws {
        let text = policy("""
                driver: route53
                route53:
                  hostedZone: Z0123456789
                  recordName: app.example.com.
                  recordType: MX
                  region: us-east-1
                  ignoreExternalDNSOwnership: yes please
                  readEvery: 5
            """)
        let blue = """
                    route53: {setIdentifer: blue, value: blue-ingress.example.com}
            """
        let folder = try AWSFolder(policy: text, blueLoadBalancer: blue)
        defer { folder.remove() }
        let (configuration, diagnostics) = folder.load()
        let shown = diagnostics.map(\.description)
        #expect(shown.contains("\(try folder.at("hostedZone:")): unknown key 'hostedZone' in spec.loadBalancer.route53; did you mean 'hostedZoneId'?"), "\(shown)")
        #expect(shown.contains("\(try folder.at("MX")): recordType 'MX' is not one a weighted record per cluster can have; use A, AAAA, CNAME"), "\(shown)")
        #expect(shown.contains("\(try folder.at("yes please")): 'ignoreExternalDNSOwnership' must be true or false, got 'yes please'"), "\(shown)")
        #expect(shown.contains("\(try folder.at("5\n")): 'readEvery' must be a duration from 250ms to 5m (like 5s), got '5'"), "\(shown)")
        #expect(shown.contains("\(try folder.at("setIdentifer", inBlue: true)): unknown key 'setIdentifer' in spec.loadBalancer.route53; did you mean 'setIdentifier'?"), "\(shown)")
        #expect(configuration.policy(named: "p") == nil)

        let missing = try AWSFolder(policy: policy("    driver: route53\n    route53: {hostedZoneId: Z1, recordName: a.example.com., region: us-east-1}"))
        defer { missing.remove() }
        let missingShown = missing.load().1.map(\.description)
        #expect(missingShown.contains { $0.hasPrefix(try! missing.at("{hostedZoneId")) && $0.contains("recordType") }, "\(missingShown)")
    }

    @Test("readEvery: absent, the driver's default and the fingerprint as before it existed; written, it is kept and fingerprinted; out of range, refused at its value")
    func readEveryDecodes() throws {
        let plain = try AWSFolder(policy: policy(route53Section))
        defer { plain.remove() }
        let spec = try #require(plain.load().0.policy(named: "p")?.loadBalancer.settings(as: Route53Spec.self))
        #expect(spec.readEvery == .seconds(5) && spec.readEveryAsWritten == nil)
        #expect(spec.fingerprint == "hostedZoneId=Z0123456789 recordName=app.example.com. recordType=CNAME region=us-east-1 "
                + "endpoint=http://127.0.0.1:5000 insyncTimeout=5m ignoreExternalDNSOwnership=false", "journals written before readEvery resume unchanged")

        let written = try AWSFolder(policy: policy(route53Section + "\n      readEvery: 750ms"))
        defer { written.remove() }
        let (configuration, diagnostics) = written.load()
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let seven = try #require(configuration.policy(named: "p")?.loadBalancer.settings(as: Route53Spec.self))
        #expect(seven.readEvery == .milliseconds(750) && seven.fingerprint.hasSuffix(" readEvery=750ms"))

        for value in ["100ms", "6m", "0s"] {
            let folder = try AWSFolder(policy: policy("""
                    driver: alb
                    alb: {listenerArn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/lb/1/2", region: us-east-1, readEvery: \(value)}
                """))
            defer { folder.remove() }
            let shown = folder.load().1.map(\.description)
            #expect(shown == ["\(try folder.at("\(value)}")): 'readEvery' must be a duration from 250ms to 5m (like 5s), got '\(value)'"], "\(shown)")
        }
    }

    @Test("an alb policy decodes with ARNs checked at their lines; weights 0-999")
    func albDecodes() throws {
        let good = try AWSFolder(policy: policy("""
                driver: alb
                alb: {listenerArn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/lb/1/2", region: us-east-1}
            """))
        defer { good.remove() }
        let (configuration, diagnostics) = good.load()
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let chosen = try #require(configuration.policy(named: "p"))
        let plan = CutoverPlan(from: try #require(configuration.cluster(named: "blue")), to: try #require(configuration.cluster(named: "green")), policy: chosen)
        #expect(plan.steps.map { [$0.weights.fromTotal, $0.weights.toTotal] } == [[990, 10], [999, 999], [0, 999]])

        let bad = try AWSFolder(policy: policy("    driver: alb\n    alb: {listenerArn: not-an-arn, regoin: us-east-1}"))
        defer { bad.remove() }
        let shown = bad.load().1.map(\.description)
        #expect(shown.contains("\(try bad.at("not-an-arn")): 'listenerArn' must be an elasticloadbalancing listener ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/...), got 'not-an-arn'"), "\(shown)")
        #expect(shown.contains("\(try bad.at("regoin")): unknown key 'regoin' in spec.loadBalancer.alb; did you mean 'region'?"), "\(shown)")
    }

    @Test("a route53 or alb policy without traffic.prometheus is refused at its driver line: neither counts traffic")
    func needsTrafficPrometheus() throws {
        for (driver, section) in [("route53", route53Section),
                                  ("alb", "    driver: alb\n    alb: {listenerArn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/a/1/2', region: us-east-1}")] {
            let text = policy(section).replacingOccurrences(of: "  traffic:\n", with: "  ignored:\n")
            let folder = try AWSFolder(policy: text.components(separatedBy: "  ignored:\n")[0] + "\n")
            defer { folder.remove() }
            let shown = folder.load().1.map(\.description)
            #expect(shown.contains { $0.contains("driver '\(driver)' counts no traffic") && $0.contains("traffic.prometheus") }, "\(shown)")
        }
    }

    @Test("without AWS credentials the registry refuses the Route53 router at construction, as a configuration error")
    func registryNeedsTrafficPrometheus() throws {
        let folder = try AWSFolder(policy: policy(route53Section))
        defer { folder.remove() }
        let (configuration, _) = folder.load()
        let chosen = try #require(configuration.policy(named: "p"))
        let blue = try #require(configuration.cluster(named: "blue")), green = try #require(configuration.cluster(named: "green"))
        let environment = ProcessInfo.processInfo.environment
        try #require(environment["AWS_ACCESS_KEY_ID"] == nil && environment["AWS_PROFILE"] == nil
                     && !FileManager.default.fileExists(atPath: NSHomeDirectory() + "/.aws/credentials"),
                     "this test needs a process without AWS credentials (unset AWS_ACCESS_KEY_ID and AWS_PROFILE)")
        // Without credentials, the router is refused at construction.
        let refused = try #require(throws: LoadBalancerError.self) {
            try DriverRegistry.standard.make(policy: chosen, from: blue, to: green, logger: Logger(label: "t"))
        }
        #expect(refused.code == .invalidConfiguration)
        #expect(refused.message.contains("no AWS credentials"), "\(refused.message)")
    }
}

/// Route53 and ALB routers against a real moto (its Route53 GETs need authentication off);
/// every fixture and every check of what moto holds goes through boto3, not our client.
@Suite struct AWSRouterMotoTests {
    static func client(_ credentials: AWSCredentials = AWSCredentials(accessKeyId: "testing", secretAccessKey: "testing")) -> AWSClient {
        let logger = Logger(label: "test.aws")
        let http = HTTPClient(configuration: .init(connectTimeout: .seconds(2), timeout: .seconds(20)), logger: logger)
        return AWSClient(credentials: credentials, http: http,
                         retry: .init(maxRetries: 1, baseDelay: .milliseconds(10), maxDelay: .milliseconds(20)), logger: logger)
    }

    /// Zone example.com. with weighted CNAMEs app.example.com. blue 255 / green 0 (TTL 60, blue
    /// with a health check id), and, when `owned`, external-dns's TXT record `cname-app.example.com.`.
    static func zone(_ moto: MotoServer, owned: Bool = false) async throws -> String {
        try await moto.python("""
            r53 = client("route53")
            zone = r53.create_hosted_zone(Name="example.com.", CallerReference="switchover-driver-test")["HostedZone"]["Id"]
            def weighted(identifier, weight, extra):
                s = {"Name": "app.example.com.", "Type": "CNAME", "SetIdentifier": identifier, "Weight": weight, "TTL": 60,
                     "ResourceRecords": [{"Value": identifier + "-ingress.example.com"}]}
                s.update(extra)
                return {"Action": "CREATE", "ResourceRecordSet": s}
            changes = [weighted("blue", 255, {"HealthCheckId": "11111111-2222-3333-4444-555555555555"}), weighted("green", 0, {})]
            if \(owned ? "True" : "False"):
                changes.append({"Action": "CREATE", "ResourceRecordSet": {"Name": "cname-app.example.com.", "Type": "TXT", "TTL": 300,
                    "ResourceRecords": [{"Value": '"heritage=external-dns,external-dns/owner=prod,external-dns/resource=service/default/app"'}]}})
            r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})
            print(zone)
            """).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// app.example.com.'s CNAMEs as boto3 reads them: set identifier -> [weight, ttl, health check].
    static func boto(_ moto: MotoServer, zone: String) async throws -> [String: [String]] {
        let output = try await moto.python("""
            sets = client("route53").list_resource_record_sets(HostedZoneId=\(BotoPython.literal(zone)))["ResourceRecordSets"]
            print(json.dumps({s["SetIdentifier"]: [str(s["Weight"]), str(s["TTL"]), s.get("HealthCheckId", "-")] for s in sets if s["Type"] == "CNAME"}))
            """)
        return try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: [String]])
    }

    static func router(_ endpoint: String, zone: String, timeout: Duration = .seconds(10), ignoreOwnership: Bool = false,
                       readEvery: Duration? = nil, client: AWSClient = client()) throws -> Route53Router {
        let spec = Route53Spec(hostedZoneId: zone, recordName: "app.example.com", recordType: "CNAME", region: "us-east-1",
                               endpoint: endpoint, insyncTimeout: timeout, ignoreExternalDNSOwnership: ignoreOwnership,
                               readEvery: readEvery)
        func cluster(_ name: String) -> ClusterServers {
            ClusterServers(cluster: name, servers: [name], section: ClusterSection(
                driver: "route53", spec: Route53ClusterSpec(setIdentifier: name, value: "\(name)-ingress.example.com")))
        }
        return try Route53Router(spec: spec, from: cluster("blue"), to: cluster("green"), client: client,
                                 pollInterval: .milliseconds(50), logger: Logger(label: "test.route53"))
    }

    @Test("a Route53 step writes both records in one batch, waits for INSYNC, reads back, and boto3 reads the same weights with TTL and health check kept")
    func route53Step() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let zone = try await Self.zone(moto)
        let router = try Self.router(moto.endpoint, zone: zone)
        #expect(await router.preflight().isEmpty)

        let live = try await router.apply(percentToTarget: 1)
        #expect(live.assignment.fromTotal == 198 && live.assignment.toTotal == 2)
        #expect(live.effectivePercentToTarget == 1)
        let generation = try #require(live.identity.generation)
        #expect(generation.hasPrefix("change ") && generation.contains(" INSYNC at "), "\(generation)")
        #expect(try await Self.boto(moto, zone: zone) == [
            "blue": ["198", "60", "11111111-2222-3333-4444-555555555555"], "green": ["2", "60", "-"]])

        try await router.apply(percentToTarget: 100)
        #expect(try await Self.boto(moto, zone: zone) == [
            "blue": ["0", "60", "11111111-2222-3333-4444-555555555555"], "green": ["255", "60", "-"]])
        let read = try await router.currentWeights()
        #expect(read.drift.isEmpty && read.effectivePercentToTarget == 100)

        // Range checks are ours (moto takes 300), and 0/0 is never written.
        let over = await #expect(throws: LoadBalancerError.self) {
            try await router.apply(WeightAssignment(from: [ServerWeight(server: "blue", weight: 300)], to: [ServerWeight(server: "green", weight: 0)]))
        }
        #expect(over?.code == .invalidWeight)
        let none = await #expect(throws: LoadBalancerError.self) {
            try await router.apply(WeightAssignment(from: [ServerWeight(server: "blue", weight: 0)], to: [ServerWeight(server: "green", weight: 0)]))
        }
        #expect(none?.message.contains("equal split") == true)
        #expect(try await Self.boto(moto, zone: zone)["green"]?.first == "255", "nothing was written")
    }

    @Test("the sampling loop's reads are paced: served from the last reading, refreshed in the background once per readEvery (failed attempts too), never retried; a write or a fresh read is the reading at once; past six readEvery of failures the error is thrown")
    func route53PacedReads() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let zone = try await Self.zone(moto)
        // AWSStandIn is a proxy in front of the real moto that answers AWS's Throttling error,
        // which moto never does; it counts what it forwards and what it throttles.
        let standIn = try await AWSStandIn.start(upstreamPort: moto.port)
        defer { standIn.stopInBackground() }
        let every = Duration.seconds(1)
        let router = try Self.router(standIn.endpoint, zone: zone, readEvery: every)
        #expect(router.readingMaxAge == .seconds(3), "readEvery, then a read's time limit (2 s at least)")
        let first = try await router.currentWeights()
        #expect(first.effectivePercentToTarget == 0)
        let forwarded = try await standIn.counts().forwarded
        for _ in 0..<8 { _ = try await router.sampledWeights() }
        #expect(try await standIn.counts().forwarded == forwarded, "eight samples within readEvery of a fresh read reach Route53 not once")

        // A write's read-back is the reading at once.
        let afterWrite = try await router.apply(percentToTarget: 50)
        let sampled = try await router.sampledWeights()
        #expect(sampled.assignment == afterWrite.assignment && sampled.drift.isEmpty, "\(sampled.assignment)")

        // A change by someone else (another client, straight to moto: boto3 takes a second to
        // start) shows after readEvery, once the background read has come back.
        let other = Route53Client(client: Self.client(), endpoint: moto.endpoint)
        var sets = try await other.recordSets(hostedZoneId: zone, named: "app.example.com.", type: "CNAME")
        for index in sets.indices { sets[index].weight = sets[index].setIdentifier == "blue" ? 255 : 1 }
        _ = try await other.changeResourceRecordSets(hostedZoneId: zone, changes: sets.map { Route53Change(.upsert, $0) })
        #expect(try await router.sampledWeights().assignment == afterWrite.assignment, "within readEvery: the reading after the write")
        try await Task.sleep(for: every + .milliseconds(100))
        // Due, the sample is answered from the held reading (the hand change is in moto already:
        // a sample that waited for the read would show it), while the read goes out.
        #expect(try await router.sampledWeights().assignment == afterWrite.assignment, "due: the held reading, while the read goes out")
        var byHand: LiveWeights?
        _ = await Wait.until(timeout: 5, every: .milliseconds(20)) {
            let read = try? await router.sampledWeights()
            if read?.assignment.toTotal == 1 { byHand = read }
            return byHand != nil
        }
        let seen = try #require(byHand, "the background read never brought the hand change")
        #expect(seen.assignment.fromTotal == 255 && !seen.drift.isEmpty, "the hand change is drift from what was written")

        // Throttled: the held reading is served at once; one attempt per readEvery, no retry.
        try await standIn.throttle(next: 1_000_000)
        let throttledBefore = try await standIn.counts().throttled
        let window = ContinuousClock.now
        var asked = 0, served = 0
        while ContinuousClock.now - window < .milliseconds(3200) {
            asked += 1
            if (try? await router.sampledWeights())?.assignment.toTotal == 1 { served += 1 }
            try await Task.sleep(for: .milliseconds(50))
        }
        let attempts = try await standIn.counts().throttled - throttledBefore
        #expect(asked >= 10 && served == asked, "the held reading was served every time: \(served) of \(asked)")
        #expect((2...5).contains(attempts), "about one read per second over 3.2 s, none retried: \(attempts)")
        // Six readEvery (6 s) after the last good reading, the throttling error itself.
        let thrown = await Wait.until(timeout: 10, every: .milliseconds(100)) {
            do { _ = try await router.sampledWeights(); return false } catch { return (error as? AWSError)?.kind == .throttled }
        }
        #expect(thrown, "past six readEvery the throttling error is thrown")
    }

    @Test("a change held PENDING past the deadline (a test-kit proxy holding back INSYNC) fails the step with a message that says PENDING")
    func route53Pending() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let zone = try await Self.zone(moto)
        // AWSStandIn is a proxy in front of the real moto: it holds back INSYNC for N GetChange
        // polls, since moto says INSYNC at once.
        let standIn = try await AWSStandIn.start(upstreamPort: moto.port)
        defer { standIn.stopInBackground() }
        try await standIn.holdInsync(polls: 1000)
        let router = try Self.router(standIn.endpoint, zone: zone, timeout: .milliseconds(400))
        let error = await #expect(throws: LoadBalancerError.self) { try await router.apply(percentToTarget: 50) }
        #expect(error?.code == .timeout)
        #expect(error?.message.contains("still PENDING after 400ms") == true, "\(error.map { "\($0)" } ?? "")")
    }

    @Test("a record external-dns owns is refused in preflight, saying what to do; the policy's override lets it pass")
    func route53Ownership() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let zone = try await Self.zone(moto, owned: true)
        let failures = await (try Self.router(moto.endpoint, zone: zone)).preflight()
        #expect(failures.count == 1)
        let message = failures.first ?? ""
        #expect(message.contains("managed by external-dns") && message.contains("cname-app.example.com.")
                && message.contains("external-dns/owner=prod") && message.contains("within its sync interval")
                && message.contains("aws-weight") && message.contains("ignoreExternalDNSOwnership: true"), "\(message)")
        #expect(await (try Self.router(moto.endpoint, zone: zone, ignoreOwnership: true)).preflight().isEmpty)
    }

    @Test("with moto's IAM authentication on, a wrong secret is an authentication failure: in Route53's preflight by name, on the ALB's read")
    func wrongSecret() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let zone = try await Self.zone(moto)
        let fixture = try await Self.alb(moto)
        let key = try await moto.enableIAMAuthentication()
        let wrong = Self.client(AWSCredentials(accessKeyId: key.accessKeyId, secretAccessKey: "not-" + key.secretAccessKey))

        let failures = await (try Self.router(moto.endpoint, zone: zone, client: wrong)).preflight()
        #expect(failures.count == 1 && failures[0].contains("authentication failed: SignatureDoesNotMatch"), "\(failures)")
        #expect(!failures.joined().contains(key.secretAccessKey))

        let alb = Self.albRouter(moto.endpoint, fixture, client: wrong)
        let error = await #expect(throws: AWSError.self) { try await alb.currentWeights() }
        #expect(error?.kind == .authentication && error?.code == "SignatureDoesNotMatch")
    }

    typealias ALBFixture = MotoServer.ALBListener

    /// The ALB every test here uses: stickiness on (300 s), so that a step must keep it.
    static func alb(_ moto: MotoServer) async throws -> ALBFixture {
        try await moto.makeALB(stickySeconds: 300)
    }

    static func albRouter(_ endpoint: String, _ fixture: ALBFixture, client: AWSClient = client()) -> ALBRouter {
        func cluster(_ name: String, _ arn: String) -> ClusterServers {
            ClusterServers(cluster: name, servers: [name], section: ClusterSection(driver: "alb", spec: ALBClusterSpec(targetGroupArn: arn)))
        }
        return ALBRouter(spec: ALBSpec(listenerArn: fixture.listener, region: "us-east-1", endpoint: endpoint),
                         from: cluster("blue", fixture.blue), to: cluster("green", fixture.green), client: client,
                         logger: Logger(label: "alb-test"))
    }

    @Test("an ALB step is one ModifyListener over both target groups, stickiness kept; boto3's DescribeListeners reads the same weights")
    func albStep() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let fixture = try await Self.alb(moto)
        let router = Self.albRouter(moto.endpoint, fixture)
        #expect(try await router.currentWeights().effectivePercentToTarget == 0)
        let live = try await router.apply(percentToTarget: 25)
        #expect(live.assignment.fromTotal == 999 && live.assignment.toTotal == 333)
        let output = try await moto.python("""
            l = client("elbv2", "us-east-1").describe_listeners(ListenerArns=[\(BotoPython.literal(fixture.listener))])["Listeners"][0]
            f = l["DefaultActions"][0]["ForwardConfig"]
            print(json.dumps({"weights": {g["TargetGroupArn"]: g["Weight"] for g in f["TargetGroups"]},
                              "sticky": f.get("TargetGroupStickinessConfig", {}).get("Enabled", False), "actions": len(l["DefaultActions"])}))
            """)
        let read = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        #expect(read["weights"] as? [String: Int] == [fixture.blue: 999, fixture.green: 333])
        #expect(read["sticky"] as? Bool == true)
        #expect(read["actions"] as? Int == 1)
    }
}
