import Foundation
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverStore
import SwitchoverRuntime
import SwitchoverTestKit
import Testing

/// A whole `switchover run` with an AWS router: the BUILT binary moves weighted Route53 records
/// (or an ALB listener's target-group weights) in a real moto, signed with the credentials in its
/// environment, while `traffic.prometheus` counts: a real Prometheus scraping a real HAProxy's
/// exporter, whose servers blue-1 and green-1 are the two clusters' nginx backends.
///
/// DNS weights route no HTTP on loopback, so HAProxy here is only the clusters' request counter:
/// it sends half the load to each cluster (weights 1/1, never touched by the run), and green's
/// 503s (`green.fail(true)`) show up in green's counters through PromQL, as a mesh's metrics
/// would in a real two-cluster setup. What moto holds is read with boto3 (`MotoServer.python`),
/// never through our client.
final class AWSLab: Lab, @unchecked Sendable {
    let haproxy: HAProxyServer
    let moto: MotoServer
    let prometheusPort: Int
    var prometheus: ManagedProcess?
    /// Every `AWSStandIn` the lab started, stopped with it.
    var standIns: [AWSStandIn] = []

    init(_ name: String) async throws {
        let backends = try await Lab.startBackends(name)
        haproxy = try await HAProxyServer.start(servers: [.init(name: "blue-1", address: backends.blue.address, weight: 1),
                                                          .init(name: "green-1", address: backends.green.address, weight: 1)],
                                                in: backends.folder)
        moto = try await MotoServer.start(in: backends.folder)
        prometheusPort = try Loopback.freePort()
        super.init(backends: backends, frontURL: haproxy.url)
    }

    deinit {
        stopAll()
    }

    override func stopAll() {
        load?.stopInBackground(grace: 1)
        for standIn in standIns { standIn.stopInBackground() }
        prometheus?.stopInBackground()
        haproxy.stopInBackground()
        moto.stopInBackground()
        super.stopAll()
    }

    /// The credentials moto takes while its IAM authentication is off.
    static let credentials = ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                              "AWS_SESSION_TOKEN": "", "AWS_PROFILE": ""]

    // MARK: - Fixtures (boto3)

    /// Zone example.com. with weighted CNAMEs app.example.com. blue 255 / green 0, TTL `ttl`.
    func route53Zone(ttl: Int = 60) async throws -> String {
        try await moto.python("""
            r53 = client("route53")
            zone = r53.create_hosted_zone(Name="example.com.", CallerReference="switchover-run")["HostedZone"]["Id"]
            def weighted(identifier, weight):
                return {"Action": "CREATE", "ResourceRecordSet": {"Name": "app.example.com.", "Type": "CNAME",
                        "SetIdentifier": identifier, "Weight": weight, "TTL": \(ttl),
                        "ResourceRecords": [{"Value": identifier + "-ingress.example.com"}]}}
            r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [weighted("blue", 255), weighted("green", 0)]})
            print(zone)
            """).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    typealias ALBFixture = MotoServer.ALBListener

    /// A VPC, an ALB, target groups blue and green, and a listener forwarding 999/0.
    func albListener() async throws -> ALBFixture { try await moto.makeALB() }

    // MARK: - Configuration

    /// Policy `test` with `loadBalancer` lines and `traffic.prometheus` over HAProxy's per-server
    /// counters; each cluster's `spec.loadBalancer` is `sections[cluster]` (its route53 or alb
    /// line) instead of a server list.
    func writeConfiguration(_ options: PolicyOptions, loadBalancer: [String], sections: [String: String]) async throws {
        var options = options
        options.extraSpec = PrometheusTrafficIntegrationTests.traffic(port: prometheusPort) + options.extraSpec
        try await writeConfiguration(options, loadBalancer: loadBalancer, servers: ["blue": ["blue-1"], "green": ["green-1"]])
        for (cluster, section) in sections {
            let file = folder.appendingPathComponent("clusters/\(cluster).yaml")
            let text = try String(contentsOf: file, encoding: .utf8)
            let replaced = text.replacingOccurrences(of: "    servers: [\(cluster)-1]", with: "    \(section)")
            guard replaced != text else { throw TestKitError("no server list in \(file.path):\n\(text)") }
            try replaced.write(to: file, atomically: true, encoding: .utf8)
        }
    }

    static func route53(zone: String, endpoint: String) -> [String] {
        ["driver: route53", "route53:", "  hostedZoneId: \(zone)", "  recordName: app.example.com.", "  recordType: CNAME",
         "  region: us-east-1", "  endpoint: \(endpoint)"]
    }

    static let route53Sections = ["blue": "route53: {setIdentifier: blue, value: blue-ingress.example.com}",
                                  "green": "route53: {setIdentifier: green, value: green-ingress.example.com}"]

    static func alb(_ fixture: ALBFixture, endpoint: String) -> [String] {
        ["driver: alb", "alb: {listenerArn: \"\(fixture.listener)\", region: us-east-1, endpoint: \(endpoint)}"]
    }

    static func albSections(_ fixture: ALBFixture) -> [String: String] {
        ["blue": "alb: {targetGroupArn: \"\(fixture.blue)\"}", "green": "alb: {targetGroupArn: \"\(fixture.green)\"}"]
    }

    /// Plan's weights for policy `test` (blue, green per step), computed as `switchover plan` does.
    func planWeights() throws -> [[Int]] {
        let (configuration, diagnostics) = ConfigLoader.load(clustersDirectory: folder.appendingPathComponent("clusters").path,
                                                             policiesDirectory: folder.appendingPathComponent("policies").path,
                                                             drivers: DriverRegistry.standard.descriptions)
        guard diagnostics.isEmpty, let policy = configuration.policy(named: "test"),
              let blue = configuration.cluster(named: "blue"), let green = configuration.cluster(named: "green") else {
            throw TestKitError("the lab's configuration does not load: \(diagnostics)")
        }
        return CutoverPlan(from: blue, to: green, policy: policy).steps.map { [$0.weights.fromTotal, $0.weights.toTotal] }
    }

    // MARK: - Processes

    /// Prometheus scraping HAProxy's exporter every second (`CutoverLab`'s).
    func startPrometheus() async throws {
        prometheus = try await CutoverLab.startPrometheus(scraping: haproxy, on: prometheusPort, in: folder)
    }

    /// An `AWSStandIn` in front of the lab's moto, on `port` (a free one when nil: give a
    /// stopped one's port to bring "Route53" back where the run points).
    func startStandIn(port: Int? = nil) async throws -> AWSStandIn {
        let standIn = try await AWSStandIn.start(upstreamPort: moto.port, port: port, in: folder)
        standIns.append(standIn)
        return standIn
    }

    /// A whole Route53 run whose AWS calls go through an `AWSStandIn` (a proxy in front of the
    /// real moto that answers AWS's Throttling error and holds INSYNC back, which moto never
    /// does; stopping it is "Route53 unreachable"): the zone (records' TTL `ttl`), policy `test`
    /// with `route53Lines` added to its route53 section, Prometheus, load through HAProxy, and
    /// the coordinator (`--until until`), started.
    func startRoute53RunThroughStandIn(ttl: Int, options: PolicyOptions, route53Lines: [String], until: String? = "promoted")
        async throws -> (zone: String, standIn: AWSStandIn, coordinator: ManagedProcess) {
        let zone = try await route53Zone(ttl: ttl)
        let standIn = try await startStandIn()
        try await writeConfiguration(options, loadBalancer: AWSLab.route53(zone: zone, endpoint: standIn.endpoint) + route53Lines,
                                     sections: AWSLab.route53Sections)
        try await startPrometheus()
        try startLoad(seconds: 90, rate: 40, workers: 4)
        return (zone, standIn, try startCoordinator(until: until, environment: AWSLab.credentials))
    }

    /// An ALB run ready to start: the listener, policy `test` with `options` over it, Prometheus
    /// and load through HAProxy; returns the fixture and plan's weights.
    func prepareALBRun(_ options: PolicyOptions) async throws -> (fixture: ALBFixture, plan: [[Int]]) {
        let fixture = try await albListener()
        try await writeConfiguration(options, loadBalancer: AWSLab.alb(fixture, endpoint: moto.endpoint), sections: AWSLab.albSections(fixture))
        let plan = try planWeights()
        try await startPrometheus()
        try startLoad(seconds: 60, rate: 40, workers: 4)
        return (fixture, plan)
    }

    /// Runs the coordinator, makes green fail (503) once step 2 bakes, and returns its exit
    /// status, expected 1 (rolled back).
    func runFailingGreenAtStep2() async throws -> Int32 {
        let coordinator = try startCoordinator(environment: AWSLab.credentials)
        defer { coordinator.stopInBackground() }
        try await waitFor("step 2 baking", timeout: 40, process: coordinator) { $0.step == 2 && $0.stepStartedAt != nil }
        try green.fail(true)
        let exit = try await waitForExit(coordinator, timeout: 60)
        #expect(exit == 1, "\(coordinator.logTail(lines: 40))")
        return exit
    }

    // MARK: - Watching moto with boto3

    /// Runs `body` while one boto3 process reads the weights every 100 ms with `read` (a Python
    /// expression giving [blue, green]) and prints each change; returns the weights in the order
    /// moto held them (consecutive repeats dropped) and how many reads succeeded. `body` starts
    /// once the first read is done (Python and boto3 take a second to start).
    func watchingWeights<T>(_ read: String, _ body: () async throws -> T) async throws -> (result: T, seen: [[Int]], reads: Int) {
        let tag = UUID().uuidString.prefix(4)
        let stop = folder.appendingPathComponent("stop-watch-\(tag)"), ready = folder.appendingPathComponent("watching-\(tag)")
        let moto = self.moto
        let watch = Task {
            try await moto.python("""
                import time
                last, reads = None, 0
                def weights():
                    return \(read)
                while not os.path.exists(\(BotoPython.literal(stop.path))):
                    now = weights()
                    reads += 1
                    if now != last:
                        print(json.dumps(now), flush=True)
                        last = now
                    if reads == 1:
                        open(\(BotoPython.literal(ready.path)), "w").close()
                    time.sleep(0.1)
                print(json.dumps(weights()))
                print("reads", reads)
                """)
        }
        let result: T
        do {
            let watching = await Wait.until(timeout: 30, every: .milliseconds(50)) { FileManager.default.fileExists(atPath: ready.path) }
            guard watching else { throw TestKitError("boto3 never read the weights") }
            result = try await body()
        } catch {
            _ = FileManager.default.createFile(atPath: stop.path, contents: nil)
            _ = try? await watch.value
            throw error
        }
        _ = FileManager.default.createFile(atPath: stop.path, contents: nil)
        let output = try await watch.value
        var seen: [[Int]] = [], reads = 0
        for line in output.split(separator: "\n") {
            if line.hasPrefix("reads ") { reads = Int(line.dropFirst(6)) ?? 0; continue }
            let weights = try JSONDecoder().decode([Int].self, from: Data(line.utf8))
            if seen.last != weights { seen.append(weights) }
        }
        return (result, seen, reads)
    }

    static func route53Read(zone: String) -> String {
        """
        (lambda sets: [next(s["Weight"] for s in sets if s.get("SetIdentifier") == c) for c in ("blue", "green")])(
                client("route53").list_resource_record_sets(HostedZoneId=\(BotoPython.literal(zone)))["ResourceRecordSets"])
        """
    }

    static func albRead(_ fixture: ALBFixture) -> String {
        """
        (lambda groups: [next(g["Weight"] for g in groups if g["TargetGroupArn"] == arn) for arn in (\(BotoPython.literal(fixture.blue)), \(BotoPython.literal(fixture.green)))])(
                client("elbv2").describe_listeners(ListenerArns=[\(BotoPython.literal(fixture.listener))])["Listeners"][0]["DefaultActions"][0]["ForwardConfig"]["TargetGroups"])
        """
    }

    /// The weights moto holds now, read once with boto3 through `read` ([blue, green]).
    func weightsNow(_ read: String) async throws -> [Int] {
        let output = try await moto.python("print(json.dumps(\(read)))")
        return try JSONDecoder().decode([Int].self, from: Data(output.utf8))
    }

    /// The `setWeights` results of the latest run that failed, each with its error as journaled.
    func failedWeightResults() throws -> [String] {
        try events().filter { $0.kind == "result" && $0.ok == false }.compactMap {
            try? JSONDecoder().decode(WeightsResultDetail.self, from: Data($0.detail.utf8)).error
        }
    }

    /// The `setWeights` results of the latest run, as journaled.
    func weightResults() throws -> [WeightsResultDetail] {
        try events().filter { $0.kind == "result" }.compactMap {
            try? JSONDecoder().decode(WeightsResultDetail.self, from: Data($0.detail.utf8))
        }.filter { !$0.servers.isEmpty }
    }
}

@Suite
struct Route53IntegrationTests {
    @Test("a Route53 run against moto: boto3 reads plan's weights at every step; green failing in Prometheus's counters rolls back to 255/0; every change id and INSYNC time is journaled")
    func route53RunRollsBack() async throws {
        let lab = try await AWSLab("route53run")
        defer { lab.stopAll() }
        let zone = try await lab.route53Zone()
        let options = Lab.PolicyOptions(steps: [10, 50, 100], bake: "6s", hardSignal: (0.2, 10))
        try await lab.writeConfiguration(options, loadBalancer: AWSLab.route53(zone: zone, endpoint: lab.moto.endpoint),
                                         sections: AWSLab.route53Sections)
        let plan = try lab.planWeights()
        try #require(plan.count == 3, "\(plan)")
        try await lab.startPrometheus()
        try lab.startLoad(seconds: 60, rate: 40, workers: 4)

        let (exit, seen, reads) = try await lab.watchingWeights(AWSLab.route53Read(zone: zone)) { try await lab.runFailingGreenAtStep2() }
        #expect(exit == 1)
        #expect(reads > 10, "boto3 read the records only \(reads) times")
        // Every weight moto held was 255/0 or one of plan's steps, both steps up to the failure
        // were seen, and the last is 255/0 again.
        #expect(seen.first == [255, 0], "\(seen)")
        #expect(seen.contains(plan[0]) && seen.contains(plan[1]), "plan \(plan), boto3 saw \(seen)")
        #expect(seen.allSatisfy { $0 == [255, 0] || plan.contains($0) }, "plan \(plan), boto3 saw \(seen)")
        #expect(seen.last == [255, 0], "\(seen)")

        let state = try #require(try lab.state())
        #expect(state.phase == .rolledBack && state.rollbackVerified)
        #expect(state.lastSample?.instances?.keys.sorted() == ["prometheus"], "\(String(describing: state.lastSample))")
        #expect((state.lastSample?.clusters["green"]?.responses5xx ?? 0) > 0)

        // The journal: every weight change (two steps and the rollback) names its change batch
        // and when it was INSYNC, in order. (moto 5.2.5 answers every batch with the same fixed
        // change id, /change/C2682N5HXP0BZ4, so ids cannot tell the changes apart here; the
        // INSYNC times order them.)
        let results = try lab.weightResults()
        #expect(results.count >= 3, "\(results)")
        let generations = results.compactMap(\.generation)
        #expect(generations.count == results.count, "\(results)")
        #expect(generations.allSatisfy { $0.hasPrefix("change C2682N5HXP0BZ4 INSYNC at 20") }, "\(generations)")
        // INSYNC times to the second (a rollback may land in its last step's second): in order.
        let insyncTimes = generations.compactMap { $0.components(separatedBy: " INSYNC at ").last }
        #expect(insyncTimes.count == results.count && insyncTimes == insyncTimes.sorted(), "\(generations)")
    }

    @Test("Route53 throttled, unreachable, then PENDING through a whole run: each pauses the run (no rollback), with the failed write journaled and the records as they were; once Route53 answers, the step's weights are written again and the run promotes")
    func route53FaultsPauseAndRecover() async throws {
        let lab = try await AWSLab("route53faults")
        defer { lab.stopAll() }
        let (zone, first, coordinator) = try await lab.startRoute53RunThroughStandIn(
            ttl: 1, options: Lab.PolicyOptions(steps: [25, 50, 75, 100], bake: "3s"), route53Lines: ["  insyncTimeout: 1s"])
        defer { coordinator.stopInBackground() }
        var standIn = first
        let plan = try lab.planWeights()
        try #require(plan.count == 4, "\(plan)")
        let read = AWSLab.route53Read(zone: zone)

        // 1. Throttled: every request, past the client's retries with backoff.
        try await lab.waitFor("step 1 baking", timeout: 40, process: coordinator) { $0.step == 1 && $0.stepStartedAt != nil }
        try await standIn.throttle(next: 1_000_000)
        var paused = try await lab.waitFor("paused while throttled", timeout: 40, process: coordinator) { $0.phase == .paused }
        #expect(paused.reason?.contains("the load balancer failed, not green: no rollback") == true, "\(paused.reason ?? "")")
        var failed = try lab.failedWeightResults()
        // The write's first call (reading the records to write them back whole) was throttled
        // past its retries, so no change batch was sent.
        #expect(failed.last?.contains("route53 ListResourceRecordSets") == true && failed.last?.contains("throttled: Throttling") == true
                && failed.last?.contains("(after 5 attempts)") == true, "\(failed)")
        #expect(try await lab.weightsNow(read) == plan[0], "a throttled change changed nothing")
        try await standIn.throttle(next: 0)
        try await lab.waitFor("step 2 baking", timeout: 40, process: coordinator) { $0.step == 2 && $0.stepStartedAt != nil && $0.phase == .shifting }
        #expect(try await lab.weightsNow(read) == plan[1])

        // 2. Unreachable: the stand-in stopped (connection refused), then back on its port.
        await standIn.stop()
        paused = try await lab.waitFor("paused while Route53 is unreachable", timeout: 40, process: coordinator) { $0.phase == .paused }
        failed = try lab.failedWeightResults()
        #expect(failed.last?.contains("unavailable") == true, "\(failed)")
        #expect(try await lab.weightsNow(read) == plan[1], "nothing was written while Route53 was unreachable")
        standIn = try await lab.startStandIn(port: standIn.port)
        try await lab.waitFor("step 3 baking", timeout: 40, process: coordinator) { $0.step == 3 && $0.stepStartedAt != nil && $0.phase == .shifting }
        #expect(try await lab.weightsNow(read) == plan[2])

        // 3. PENDING past insyncTimeout: Route53 took the change (moto applies it at once), so
        // the journal names the change batch the run is waiting on.
        try await standIn.holdInsync(polls: 1_000_000)
        paused = try await lab.waitFor("paused while PENDING", timeout: 40, process: coordinator) { $0.phase == .paused }
        failed = try lab.failedWeightResults()
        #expect(failed.last?.contains("change C2682N5HXP0BZ4 is still PENDING after 1s") == true, "\(failed)")
        try await standIn.holdInsync(polls: 0)

        let exit = try await lab.waitForExit(coordinator, timeout: 90)
        #expect(exit == 0, "\(coordinator.logTail(lines: 40))")
        let state = try #require(try lab.state())
        #expect(state.phase == .promoted, "\(state.phase)")
        #expect(try await lab.weightsNow(read) == plan[3])
        // Three pauses, never a rollback; each failed write is journaled beside its intent.
        #expect(try lab.engineEvents(.paused).count >= 3)
        #expect(try lab.engineEvents(.rollbackStarted).isEmpty)
        let events = try lab.events()
        let intents = Set(events.filter { $0.kind == "intent" }.compactMap(\.intentID))
        let results = events.filter { $0.kind == "result" }
        #expect(results.allSatisfy { $0.intentID.map(intents.contains) == true }, "every result answers a journaled intent")
        #expect(Set(results.compactMap(\.intentID)) == intents, "every intent has its result: nothing left half-applied")
        #expect(try lab.failedWeightResults().count >= 3)
    }

    @Test("Route53 unreachable while green fails: Prometheus's counters still reach the hard signal, the rollback is decided at once and lands when Route53 answers again")
    func route53DownStillRollsBack() async throws {
        let lab = try await AWSLab("route53down")
        defer { lab.stopAll() }
        // readEvery 500ms: the last reading is used for 3 s of failed reads, then none.
        let (zone, standIn, coordinator) = try await lab.startRoute53RunThroughStandIn(
            ttl: 1, options: Lab.PolicyOptions(steps: [10, 50, 100], bake: "30s", hardSignal: (0.2, 10)), route53Lines: ["  readEvery: 500ms"])
        defer { coordinator.stopInBackground() }
        let plan = try lab.planWeights()
        let read = AWSLab.route53Read(zone: zone)

        try await lab.waitFor("step 1 baking", timeout: 40, process: coordinator) { $0.step == 1 && $0.stepStartedAt != nil }
        await standIn.stop()
        let unread = await Wait.until(timeout: 15, every: .milliseconds(100)) {
            coordinator.logTail(lines: 200).contains("could not read the live weights")
        }
        #expect(unread, "\(coordinator.logTail(lines: 40))")
        try lab.green.fail(true)
        let decided = try await lab.waitFor("the rollback decided while Route53 is unreachable", timeout: 20, process: coordinator) {
            $0.phase == .rolledBack
        }
        #expect(!decided.rollbackVerified)
        #expect(try lab.engineEvents(.rollbackStarted).first?.event.message.contains("hard signal") == true)
        // The rolled-back state is journaled before the rollback's write and its result.
        let failedRollback = await Wait.until(timeout: 10, every: .milliseconds(50)) {
            ((try? lab.failedWeightResults()) ?? []).contains { $0.contains("unavailable") }
        }
        #expect(failedRollback, "\((try? lab.failedWeightResults()) ?? [])")
        #expect(try await lab.weightsNow(read) == plan[0], "nothing could be written while Route53 was unreachable")

        _ = try await lab.startStandIn(port: standIn.port)
        let exit = try await lab.waitForExit(coordinator, timeout: 60)
        #expect(exit == 1, "\(coordinator.logTail(lines: 40))")
        let state = try #require(try lab.state())
        #expect(state.phase == .rolledBack && state.rollbackVerified)
        #expect(try await lab.weightsNow(read) == [255, 0])
    }

    @Test("the drain of a Route53 run waits the record's TTL (3 s, read from Route53; the policy's dnsTTL is 0) before its hold: the journal's drained reason and status say so")
    func route53DrainWaitsTheRecordTTL() async throws {
        let lab = try await AWSLab("route53drain")
        defer { lab.stopAll() }
        let zone = try await lab.route53Zone(ttl: 3)
        let options = Lab.PolicyOptions(steps: [50, 100], bake: "2s", holdFor: "3s", dnsTTL: "0s", drainTimeout: "2m")
        try await lab.writeConfiguration(options, loadBalancer: AWSLab.route53(zone: zone, endpoint: lab.moto.endpoint),
                                         sections: AWSLab.route53Sections)
        try await lab.startPrometheus()
        // Load while the steps bake (the gates need it), stopped at promotion: blue goes quiet
        // at once, well before the TTL ends, so the hold (3 s) must wait for the TTL to begin.
        try lab.startLoad(seconds: 60, rate: 40, workers: 4)
        let coordinator = try lab.startCoordinator(until: nil, environment: AWSLab.credentials)
        defer { coordinator.stopInBackground() }
        try await lab.waitFor("promoted", timeout: 60, process: coordinator) { $0.phase == .promoted || $0.phase == .draining }
        lab.load?.stopInBackground(grace: 0)
        let exit = try await lab.waitForExit(coordinator, timeout: 120)
        #expect(exit == 0, "\(coordinator.logTail(lines: 40))")
        let state = try #require(try lab.state())
        #expect(state.phase == .drained, "\(coordinator.logTail(lines: 40))")
        let drain = try #require(state.drain)
        #expect(drain.recordTTL == .seconds(3))
        let drained = try lab.engineEvents(.drained)
        #expect(drained.count == 1)
        #expect(drained.first?.event.message.contains("DNS TTL 3s passed (the record's, read from the load balancer; the policy's is 0s)") == true,
                "\(drained.map(\.event.message))")
        #expect(drained.first?.event.message.contains("(hold 3s, after the DNS TTL)") == true, "\(drained.map(\.event.message))")
        // The 3 s hold counts only from the end of the 3 s TTL (before, it ran within it).
        if let zero = drain.weightZeroSince, let at = drained.first?.at {
            #expect(at - zero >= .seconds(6), "drained \(at - zero) after blue's weight read 0")
        }
        let status = try await lab.statusJSON()
        let ttl = (status["drain"] as? [String: Any])?["dnsTTL"] as? [String: Any]
        #expect(ttl?["seconds"] as? Double == 3, "\(status)")
    }

    @Test("the drain of a Route53 run never ends on an old reading of blue's weight: with Route53 unreachable it waits, saying so; back, it drains")
    func route53DrainWaitsForAFreshReading() async throws {
        let lab = try await AWSLab("route53stale")
        defer { lab.stopAll() }
        // The drain needs 1 s of TTL and then 4 s of hold. With readEvery 500ms the reading of
        // promotion's read-back is used for 3 s at most with Route53 unreachable (six readEvery,
        // at least readEvery + a read's 2 s time limit + readEvery): not long enough.
        let (_, standIn, coordinator) = try await lab.startRoute53RunThroughStandIn(
            ttl: 1, options: Lab.PolicyOptions(steps: [50, 100], bake: "2s", holdFor: "4s", dnsTTL: "0s", drainTimeout: "2m"),
            route53Lines: ["  readEvery: 500ms"], until: nil)
        defer { coordinator.stopInBackground() }
        try await lab.waitFor("promoted", timeout: 60, process: coordinator) { $0.phase == .promoted || $0.phase == .draining }
        lab.load?.stopInBackground(grace: 0)
        await standIn.stop()

        // Blue stops getting samples: the reading is too old for the drain, then none is read.
        try await lab.waitFor("the drain waiting for a fresh reading", timeout: 20, process: coordinator) {
            $0.drain?.reason.contains("no fresh reading of FROM") == true
        }
        let log = coordinator.logTail(lines: 300)
        #expect(log.contains("blue's drain waits for a fresh reading") || log.contains("could not sample the load balancer"), "\(log)")
        try await Task.sleep(for: .seconds(6))
        let held = try #require(try lab.state())
        #expect(held.phase == .draining, "blue idle, TTL and hold long passed, but no fresh reading of its weight: \(held.phase)")
        #expect(held.drain?.reason.contains("no fresh reading of FROM") == true, "\(held.drain?.reason ?? "")")

        _ = try await lab.startStandIn(port: standIn.port)
        let exit = try await lab.waitForExit(coordinator, timeout: 60)
        #expect(exit == 0, "\(coordinator.logTail(lines: 40))")
        #expect(try lab.state()?.phase == .drained)
    }

    @Test("an ALB run against moto: boto3's DescribeListeners reads plan's weights at every step, and a healthy green is promoted")
    func albRunPromotes() async throws {
        let lab = try await AWSLab("albrun")
        defer { lab.stopAll() }
        let (fixture, plan) = try await lab.prepareALBRun(Lab.PolicyOptions(steps: [10, 50, 100], bake: "2s"))

        let (exit, seen, reads) = try await lab.watchingWeights(AWSLab.albRead(fixture)) { () async throws -> Int32 in
            let coordinator = try lab.startCoordinator(environment: AWSLab.credentials)
            defer { coordinator.stopInBackground() }
            let exit = try await lab.waitForExit(coordinator, timeout: 60)
            #expect(exit == 0, "\(coordinator.logTail(lines: 40))")
            return exit
        }
        #expect(exit == 0)
        #expect(reads > 10)
        #expect(seen == [[999, 0]] + plan, "plan \(plan), boto3 saw \(seen)")
        let state = try #require(try lab.state())
        #expect(state.phase == .promoted)
        #expect(state.lastSample?.instances?.keys.sorted() == ["prometheus"])
        #expect(try lab.weightResults().count == plan.count)
    }

    @Test("an ALB run against moto: green failing in Prometheus's counters at step 2 rolls the listener back to 999/0, read with boto3's DescribeListeners")
    func albRunRollsBack() async throws {
        let lab = try await AWSLab("albrollback")
        defer { lab.stopAll() }
        let (fixture, plan) = try await lab.prepareALBRun(Lab.PolicyOptions(steps: [10, 50, 100], bake: "6s", hardSignal: (0.2, 10)))

        let (exit, seen, _) = try await lab.watchingWeights(AWSLab.albRead(fixture)) { try await lab.runFailingGreenAtStep2() }
        #expect(exit == 1)
        #expect(seen == [[999, 0], plan[0], plan[1], [999, 0]], "plan \(plan), boto3 saw \(seen)")
        let state = try #require(try lab.state())
        #expect(state.phase == .rolledBack && state.rollbackVerified)
        #expect(try lab.engineEvents(.rollbackStarted).first?.event.message.contains("hard signal") == true)
        // Every write journaled with what the listener read back: the two steps and the rollback.
        let results = try lab.weightResults()
        #expect(results.map { [$0.servers[fixture.blue] ?? -1, $0.servers[fixture.green] ?? -1] } == [plan[0], plan[1], [999, 0]], "\(results)")
    }

    @Test("a wrong secret with moto's IAM authentication on: switchover run exits 2 in preflight saying authentication failed, without the secret")
    func wrongSecretExits2() async throws {
        let lab = try await AWSLab("awssecret")
        defer { lab.stopAll() }
        let fixture = try await lab.albListener()
        try await lab.writeConfiguration(Lab.PolicyOptions(steps: [10, 100]), loadBalancer: AWSLab.alb(fixture, endpoint: lab.moto.endpoint),
                                         sections: AWSLab.albSections(fixture))
        try await lab.startPrometheus()
        let key = try await lab.moto.enableIAMAuthentication()
        var environment = AWSLab.credentials
        environment["AWS_ACCESS_KEY_ID"] = key.accessKeyId
        environment["AWS_SECRET_ACCESS_KEY"] = "wrong" + key.secretAccessKey
        let run = try await runSwitchover(["run", "blue", "green", "--policy", "test"] + lab.globalArguments, cwd: lab.folder,
                                          extraEnvironment: environment)
        let said = run.stdout + run.stderr
        #expect(run.exitCode == 2, "\(said)")
        #expect(said.contains("authentication failed") && said.contains("SignatureDoesNotMatch"), "\(said)")
        #expect(!said.contains(key.secretAccessKey))
        // Nothing moved (DescribeListeners is a POST: boto3 reads it with the right key, authentication on).
        let read = try await lab.moto.python("print(json.dumps(\(AWSLab.albRead(fixture))))")
        #expect(read.trimmingCharacters(in: .whitespacesAndNewlines) == "[999, 0]", "\(read)")
    }

    @Test("without AWS credentials switchover run exits 2 naming where it looked: the environment variables and the shared credentials file")
    func missingCredentialsExits2() async throws {
        let lab = try await AWSLab("awsnocreds")
        defer { lab.stopAll() }
        let zone = try await lab.route53Zone()
        try await lab.writeConfiguration(Lab.PolicyOptions(steps: [10, 100]), loadBalancer: AWSLab.route53(zone: zone, endpoint: lab.moto.endpoint),
                                         sections: AWSLab.route53Sections)
        let file = lab.folder.appendingPathComponent("no-such-credentials").path
        let run = try await runSwitchover(["run", "blue", "green", "--policy", "test"] + lab.globalArguments, cwd: lab.folder,
                                          extraEnvironment: ["AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
                                                             "AWS_PROFILE": "", "AWS_SHARED_CREDENTIALS_FILE": file])
        let said = run.stdout + run.stderr
        #expect(run.exitCode == 2, "\(said)")
        #expect(said.contains("no AWS credentials") && said.contains("AWS_ACCESS_KEY_ID") && said.contains(file), "\(said)")
    }
}
