import Foundation
import SwitchoverCore
import SwitchoverRuntime
import SwitchoverStore
import SwitchoverTestKit
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A whole-cluster switchover (issue 14) through the BUILT binary: two real HAProxy instances
/// (`lb-a`, `lb-b`) in front of the same nginx backends, three services (`cart`, `checkout`,
/// `search`), `hey` load through both instances for every service (`FleetLab`). What the load
/// balancers held is read from their runtime APIs (`show servers state`), phases from `status
/// --output json`; Switchover's own drivers are never used to check Switchover.
///
/// Steps [50, 100] and 1 s bakes keep each test in the tens of seconds; timeouts leave room for a
/// busy 2-core machine.
@Suite
struct FleetIntegrationTests {
    // MARK: - Helpers

    static func number(_ value: Any?) -> Double? { (value as? NSNumber)?.doubleValue }

    /// Every service on every instance holds all its traffic on green: blue weight 0, green above
    /// 0. `drained`: blue also in drain state, green not.
    static func expectAllGreen(_ lab: FleetLab, drained: Bool = false, _ context: String = "") async throws {
        for instance in FleetLab.instanceNames {
            for service in FleetLab.services {
                let (blue, green) = try await lab.servers(instance, service)
                #expect(blue.weight == 0 && green.weight > 0,
                        "\(instance) \(service): blue \(blue.weight), green \(green.weight) \(context)")
                if drained {
                    #expect(blue.inDrain, "\(instance) \(service): \(blue.name) not in drain (admin state \(blue.adminState)) \(context)")
                }
                #expect(!green.inDrain, "\(instance) \(service): \(green.name) in drain (admin state \(green.adminState)) \(context)")
            }
        }
    }

    /// Every service on every instance back on blue: blue weight above 0 and ready, green 0.
    static func expectAllBlue(_ lab: FleetLab, _ context: String = "") async throws {
        for instance in FleetLab.instanceNames {
            for service in FleetLab.services {
                let (blue, green) = try await lab.servers(instance, service)
                #expect(blue.weight > 0 && green.weight == 0,
                        "\(instance) \(service): blue \(blue.weight), green \(green.weight) \(context)")
                #expect(!blue.inDrain, "\(instance) \(service): \(blue.name) in drain \(context)")
            }
        }
    }

    /// A verified step is baking: `status` says shifting with a bake under way.
    static func baking(_ status: [String: Any]) -> Bool {
        status["phase"] as? String == "shifting" && number(status["bakeRemainingSeconds"]) != nil
    }

    /// The contract's `"services": {"<svc>": {"weights": {...}, "instances": {"<lb>":
    /// {"liveWeights": {...}}}}}` in `status --output json`, for every service and instance;
    /// returns it by service.
    static func servicesSection(_ status: [String: Any]) throws -> [String: [String: Any]] {
        let services = try #require(status["services"] as? [String: Any], "no \"services\" in status: \(status)")
        var bySerivce: [String: [String: Any]] = [:]
        for service in FleetLab.services {
            let entry = try #require(services[service] as? [String: Any], "no services.\(service): \(services)")
            #expect(entry["weights"] is [String: Any], "services.\(service).weights: \(entry)")
            let instances = try #require(entry["instances"] as? [String: Any], "services.\(service).instances: \(entry)")
            for instance in FleetLab.instanceNames {
                let live = (instances[instance] as? [String: Any])?["liveWeights"]
                #expect(live is [String: Any], "services.\(service).instances.\(instance).liveWeights: \(instances)")
            }
            bySerivce[service] = entry
        }
        return bySerivce
    }


    /// What is wrong with the order the readings show, for waves `[first, then]`; empty when:
    /// each instance was read often (> 50 times); on each reading no service of `then` has weight
    /// on green unless every service of `first` is all green on that instance; every service of
    /// `first` was all green on BOTH instances before any of `then` had weight on EITHER; the
    /// first wave's intermediate step was read (it stepped, it did not jump); and once the second
    /// wave moved, the first stayed at 100%.
    static func waveOrderProblems(_ readings: [FleetWatch.Reading], first: [String], then second: [String]) -> [String] {
        var problems: [String] = []
        for instance in FleetLab.instanceNames where readings.filter({ $0.instance == instance }).count <= 50 {
            problems.append("\(instance) was read \(readings.filter { $0.instance == instance }.count) times, not more than 50")
        }
        func describe(_ r: FleetWatch.Reading) -> String {
            "\(r.instance): " + (first + second).map { "\($0) \(r.weights($0).map { "\($0.blue)/\($0.green)" } ?? "?")" }.joined(separator: ", ")
        }
        let firstDone = { (r: FleetWatch.Reading) in first.allSatisfy { r.allGreen($0) } }
        let secondMoving = { (r: FleetWatch.Reading) in second.contains { r.anyGreen($0) } }
        let early = readings.filter { secondMoving($0) && !firstDone($0) }
        if !early.isEmpty {
            problems.append("the second wave had weight before the first was at 100% on the same instance: \(early.prefix(3).map(describe))")
        }
        let done = FleetLab.instanceNames.map { instance in readings.first { $0.instance == instance && firstDone($0) }?.at }
        guard let moved = readings.first(where: secondMoving)?.at else {
            return problems + ["the second wave was never read with weight on green"]
        }
        if done.contains(where: { $0 == nil }) {
            problems.append("the first wave was never read at 100% on both instances")
        } else if let doneOnBoth = done.compactMap({ $0 }).max(), !(doneOnBoth < moved) {
            problems.append("the first wave reached 100% on both instances at \(doneOnBoth), after the second moved at \(moved)")
        }
        if !readings.contains(where: { r in first.contains { r.anyGreen($0) && !r.allGreen($0) } }) {
            problems.append("the first wave's intermediate step was never read")
        }
        let slipped = readings.filter { $0.at >= moved && !firstDone($0) }
        if !slipped.isEmpty {
            problems.append("the first wave left 100% during the second: \(slipped.prefix(3).map(describe))")
        }
        return problems
    }

    // MARK: - a. healthy

    @Test("a healthy run promotes every service on both instances, each read back from its runtime API; status shows services and instances; 0 failed requests")
    func healthyRunPromotesEverything() async throws {
        let lab = try await FleetLab("fleet-healthy")
        defer { lab.stopAll() }
        print("fleet lab up in \(lab.startup)")
        try lab.startLoad(seconds: 60)
        try await Task.sleep(for: .milliseconds(500))
        let coordinator = try lab.startCoordinator(until: "promoted")
        defer { coordinator.stopInBackground() }

        // While it runs: the contract's per-service, per-instance section.
        let running = try await lab.waitForStatus("a step baking", process: coordinator, Self.baking)
        _ = try Self.servicesSection(running)

        let exit = try await lab.waitForExit(coordinator)
        try #require(exit == 0, "\(coordinator.logTail(lines: 40))")
        try await Self.expectAllGreen(lab)

        let status = try await lab.statusJSON()
        #expect(status["phase"] as? String == "promoted", "\(status)")
        for (service, entry) in try Self.servicesSection(status) {
            let weights = entry["weights"] as? [String: Any]
            #expect(Self.number(weights?["green"]) == 100 && Self.number(weights?["blue"]) == 0, "\(service): \(entry)")
            for instance in FleetLab.instanceNames {
                let live = ((entry["instances"] as? [String: Any])?[instance] as? [String: Any])?["liveWeights"] as? [String: Any]
                #expect(Self.number(live?["green"]) == 100 && Self.number(live?["blue"]) == 0, "\(service) at \(instance): \(entry)")
            }
        }
        // Each step's event names every service at its percentage (what the log and the
        // report show; a pipe gets no progress line).
        let steps = try lab.events().filter { $0.kind == "stepStarted" }
        #expect(!steps.isEmpty)
        for step in steps {
            let event = try JSONDecoder().decode(EngineEvent.self, from: Data(step.detail.utf8))
            let named = event.evidence["services"] ?? ""
            #expect(FleetLab.services.allSatisfy { named.contains("\($0)=") }, "step \(event.step ?? 0) names not every service: \(named)")
        }

        let reports = try await lab.loadReports()
        for (instance, byService) in reports {
            for (service, report) in byService {
                #expect(report.responses > 20, "\(instance) \(service): \(report)")
                #expect(report.failed == 0, "\(instance) \(service): \(report)")
            }
        }
        // Green served every service.
        for service in FleetLab.services {
            #expect(try lab.green[service]!.requestCount() > 0, "green-\(service)-1 got no request")
        }
    }

    // MARK: - b. waves

    @Test("waves [[cart], [checkout, search]]: cart is at 100% on both instances before checkout or search gets any weight; journal and report show it")
    func wavesMoveInOrder() async throws {
        let lab = try await FleetLab("fleet-waves", options: .init(waves: [["cart"], ["checkout", "search"]]))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 90)
        try await Task.sleep(for: .milliseconds(500))
        let watch = FleetWatch(lab, every: .milliseconds(20))
        let coordinator = try lab.startCoordinator(until: "promoted")
        defer { coordinator.stopInBackground() }
        let exit = try await lab.waitForExit(coordinator)
        let (readings, _) = await watch.stop()
        try #require(exit == 0, "\(coordinator.logTail(lines: 40))")
        try await Self.expectAllGreen(lab)

        let problems = Self.waveOrderProblems(readings, first: ["cart"], then: ["checkout", "search"])
        #expect(problems.isEmpty, "\(problems)")

        // The journal: each step names its wave and every service's percentage; cart's wave
        // ends at 100% (checkout and search still at 0) before the second wave's first step.
        let details = try lab.events().filter { $0.kind == "stepStarted" }.map(\.detail)
        let cartDone = try #require(details.firstIndex { $0.contains("wave 1 of 2 (cart) at 100%") && $0.contains("cart=100 checkout=0 search=0") },
                                    "no stepStarted puts cart alone at 100%: \(details)")
        let secondWave = try #require(details.firstIndex { $0.contains("wave 2 of 2 (checkout, search)") },
                                      "no stepStarted starts the second wave: \(details)")
        #expect(cartDone < secondWave, "\(details)")
        #expect(details[secondWave].contains("cart=100"), "\(details[secondWave])")
        #expect(!details[..<cartDone].contains { $0.contains("wave 2") }, "\(details)")

        // The report names every service and instance.
        let out = lab.folder.appendingPathComponent("report.html")
        let report = try await lab.cli(["report", "--out", out.path])
        #expect(report.exitCode == 0, "\(report.stdout) \(report.stderr)")
        let html = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        for name in FleetLab.services + FleetLab.instanceNames {
            #expect(html.contains(name), "the report does not name \(name)")
        }
        // Per-service weights: a line per service on the timeline and a row per service, with
        // the step counted across waves.
        for service in FleetLab.services {
            #expect(html.contains("data-series=\"weight:service:\(service)\""), "no weight line for \(service)")
            #expect(html.contains("<tr data-service=\"\(service)\"><td>\(service)</td>"), "no row for \(service)")
        }
        #expect(html.contains("<dd>4 of 4</dd>"), "steps reached should count across waves")
        let load = try await lab.loadReports()
        #expect(load.values.flatMap(\.values).allSatisfy { $0.failed == 0 }, "\(load)")
    }

    // MARK: - c. an instance SIGKILLed mid-step

    @Test("lb-b SIGKILLed mid-step pauses the run naming it, no rollback; started again with all-blue weights, the coordinator re-asserts the step on it by itself and promotes; 0 failed through lb-a")
    func instanceKilledMidStep() async throws {
        // Four steps, so that the step the kill lands in (step 1, or step 2 on a loaded machine
        // where step 1's bake ended first) sends traffic to both sides.
        let lab = try await FleetLab("fleet-kill", options: .init(steps: [20, 40, 60, 100], bake: "4s"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 120)
        try await Task.sleep(for: .milliseconds(500))
        let coordinator = try lab.startCoordinator(until: "promoted")
        defer { coordinator.stopInBackground() }

        let baking = try await lab.waitForStatus("step 1 baking", process: coordinator) {
            Self.baking($0) && ($0["step"] as? Int) == 1
        }
        try await Task.sleep(for: .seconds(1))
        let eventsAtKill = try lab.events().count  // before the kill: its pause can land before kill() returns
        await lab.lbB.kill()

        let paused = try await lab.waitForStatus("paused", timeout: 30, process: coordinator) { $0["phase"] as? String == "paused" }
        let reason = paused["reason"] as? String ?? ""
        #expect(reason.contains("lb-b"), "the pause names the instance: \(paused)")
        let pausedStep = paused["step"] as? Int ?? 0, bakingStep = baking["step"] as? Int ?? 0
        #expect(pausedStep == bakingStep || pausedStep == bakingStep + 1, "\(paused)")
        // Paused, not rolled back: lb-a keeps the step's weights.
        for service in FleetLab.services {
            let (blue, green) = try await lab.servers("lb-a", service)
            #expect(blue.weight > 0 && green.weight > 0, "lb-a \(service) while paused: blue \(blue.weight), green \(green.weight)")
        }
        // Still paused a while later (it keeps retrying, never rolls back).
        try await Task.sleep(for: .seconds(2))
        let still = try await lab.statusJSON()
        #expect(still["phase"] as? String == "paused", "\(still)")
        #expect(try !lab.events().contains { $0.kind == "rollbackStarted" })

        // Started again from its config: blue 1, green 0 everywhere. No `resume` is sent.
        try await lab.lbB.startAgain()
        let exit = try await lab.waitForExit(coordinator, timeout: 120)
        try #require(exit == 0, "\(coordinator.logTail(lines: 40))")
        try await Self.expectAllGreen(lab)
        let status = try await lab.statusJSON()
        #expect(status["phase"] as? String == "promoted", "\(status)")
        let events = try lab.events()
        #expect(!events.contains { $0.kind == "rollbackStarted" }, "no rollback at any point")
        #expect(events.dropFirst(eventsAtKill).contains { $0.detail.contains("lb-b") },
                "the journal names lb-b after the kill: \(events.dropFirst(eventsAtKill).map { "\($0.kind) \($0.detail.prefix(200))" })")

        let reports = try await lab.loadReports()
        for (service, report) in reports["lb-a"] ?? [:] {
            #expect(report.responses > 50, "lb-a \(service): \(report)")
            #expect(report.failed == 0, "lb-a \(service): \(report)")
        }
        #expect(reports["lb-a"]?.count == 3)

        // The journal's series are the samples the engine judged, summed per instance: lb-b gone
        // silent, then counting from 0 again, is no dip in either cluster's responses.
        let journal = try SQLiteJournal(path: lab.statePath)
        let run = try #require(try journal.latestRun())
        for cluster in ["blue", "green"] {
            let series = try journal.samples(run: run.id, cluster: cluster, since: Instant(millisecondsSinceEpoch: 0)).map(\.counters.responses)
            #expect(series.count > 10 && zip(series, series.dropFirst()).allSatisfy { $0 <= $1 },
                    "\(cluster)'s journaled responses dip: \(series)")
        }
    }

    // MARK: - d. an instance reloaded while draining

    @Test("lb-b reloaded after promotion, during the drain: 100% to green and blue's drain state re-asserted on it, drained, decommission accepted, 0 failed requests")
    func instanceReloadedWhileDraining() async throws {
        // A hold long enough that the reload lands in the drain even on a loaded machine.
        let lab = try await FleetLab("fleet-reload", options: .init(holdFor: "10s", drainTimeout: "90s"))
        defer { lab.stopAll() }
        try lab.startLoad(seconds: 120)
        try await Task.sleep(for: .milliseconds(500))
        let coordinator = try lab.startCoordinator(until: nil)  // the policy has a drain section: goal drained
        defer { coordinator.stopInBackground() }

        try await lab.waitForStatus("draining", process: coordinator) { $0["phase"] as? String == "draining" }
        // The drain state is on every blue server of both instances before the reload wipes lb-b's.
        let inDrain = try await Wait.until(timeout: 30, every: .milliseconds(100)) {
            var all = true
            for instance in FleetLab.instanceNames {
                for service in FleetLab.services {
                    let (blue, green) = try await lab.servers(instance, service)
                    all = all && blue.inDrain && blue.weight == 0 && green.weight > 0
                }
            }
            return all
        }
        try #require(inDrain, "blue never read in drain at weight 0 on both instances")
        let pidBefore = lab.lbB.pid
        // Counted before the reload: the coordinator can notice the new lb-b and re-assert on it
        // before `reload()` returns.
        let eventsAtReload = try lab.events().count
        try await lab.lbB.reload()
        #expect(lab.lbB.pid != pidBefore)
        let during = try await lab.statusJSON()
        #expect(during["phase"] as? String == "draining", "the reload landed during the drain: \(during)")

        let exit = try await lab.waitForExit(coordinator, timeout: 120)
        try #require(exit == 0, "\(coordinator.logTail(lines: 40))")
        let drained = try await lab.statusJSON()
        #expect(drained["phase"] as? String == "drained", "\(drained)")
        try await Self.expectAllGreen(lab, drained: true, "(drained)")
        let afterReload = try lab.events().dropFirst(eventsAtReload)
        #expect(afterReload.contains { $0.detail.contains("lb-b") },
                "the journal names lb-b after the reload: \(afterReload.map { "\($0.kind) \($0.detail.prefix(200))" })")

        let decommission = try await lab.cli(["decommission", "blue"])
        #expect(decommission.exitCode == 0, "\(decommission.stdout) \(decommission.stderr)")
        #expect(decommission.stdout.contains("accepted"), "\(decommission.stdout)")
        #expect(try await lab.statusJSON()["phase"] as? String == "decommissioned")

        let reports = try await lab.loadReports()
        for (instance, byService) in reports {
            for (service, report) in byService {
                #expect(report.responses > 20, "\(instance) \(service): \(report)")
                #expect(report.failed == 0, "\(instance) \(service): \(report)")
            }
        }
    }

    // MARK: - e. green failing in one service

    /// Load through both instances, the coordinator, checkout's green failing (503) once step 1
    /// bakes; returns once the run exited 1 with every service on both instances back on blue.
    static func rollBackOnFailingCheckout(_ lab: FleetLab) async throws {
        try lab.startLoad(seconds: 90)
        try await Task.sleep(for: .milliseconds(500))
        let coordinator = try lab.startCoordinator(until: "promoted")
        defer { coordinator.stopInBackground() }
        try await lab.waitForStatus("step 1 baking", process: coordinator) { Self.baking($0) && ($0["step"] as? Int) == 1 }
        try lab.green["checkout"]!.fail(true)

        let exit = try await lab.waitForExit(coordinator)
        try #require(exit == 1, "rolled back: \(coordinator.logTail(lines: 40))")
        try await Self.expectAllBlue(lab, "(after the rollback)")
    }

    @Test("green failing (503) in checkout only rolls the whole switchover back: every service on both instances back on blue, verified")
    func oneFailingServiceRollsBackAll() async throws {
        let lab = try await FleetLab("fleet-rollback", options: .init(bake: "3s"))
        defer { lab.stopAll() }
        try await Self.rollBackOnFailingCheckout(lab)
        let status = try await lab.statusJSON()
        #expect(status["phase"] as? String == "rolledBack", "\(status)")
        #expect(status["rollbackVerified"] as? Bool == true, "\(status)")
        let events = try lab.events()
        let started = try #require(events.first { $0.kind == "rollbackStarted" }, "\(events.map(\.kind))")
        #expect(started.detail.contains("checkout") || (status["reason"] as? String ?? "").contains("checkout"),
                "the rollback names the failing service: \(started.detail) / \(status["reason"] ?? "")")
        #expect(events.contains { $0.kind == "rollbackVerified" })
    }

    @Test("traffic.prometheus with $service over both instances' exporters: green failing in checkout only, counted by Prometheus, rolls every service back, naming checkout")
    func oneFailingServiceCountedByPrometheus() async throws {
        let lab = try await FleetLab("fleet-promtraffic", options: .init(bake: "30s", hardSignal: (0.2, 10)))
        defer { lab.stopAll() }
        let port = try Loopback.freePort()
        try lab.editPolicy("  drain:\n", """
              traffic:
                prometheus:
                  url: http://127.0.0.1:\(port)
                  requests: 'sum(haproxy_server_http_responses_total{proxy="be_$service",server=~"$cluster-.*"})'
                  errors: 'sum(haproxy_server_http_responses_total{proxy="be_$service",server=~"$cluster-.*",code="5xx"})'
              drain:

            """)
        let prometheus = try await CutoverLab.startPrometheus(scraping: [lab.lbA, lab.lbB], on: port, in: lab.folder)
        defer { prometheus.stopInBackground() }
        let plan = try await lab.cli(["plan", "blue", "green", "--policy", "fleet"])
        #expect(plan.exitCode == 0 && plan.stdout.contains("traffic counted by Prometheus"), "\(plan.stdout) \(plan.stderr)")

        try await Self.rollBackOnFailingCheckout(lab)
        let events = try lab.events()
        let started = try #require(events.first { $0.kind == "rollbackStarted" }, "\(events.map(\.kind))")
        #expect(started.detail.contains("checkout"), "the rollback names the failing service: \(started.detail)")
        #expect(!started.detail.contains("cart") && !started.detail.contains("search"), "\(started.detail)")
        // The counters came from Prometheus, per service: the one instance they are kept under
        // is "prometheus", not lb-a and lb-b.
        let journal = try StateLocation(parsing: lab.statePath, etcd: EtcdOptions()).journal()
        let run = try #require(try journal.latestRun())
        let state = try #require(try journal.loadCutoverState(run: run.id))
        #expect(state.lastSample?.instances?.keys.sorted() == ["prometheus"], "\(String(describing: state.lastSample?.instances?.keys))")
        #expect(state.lastSample?.services?.keys.sorted() == FleetLab.services.sorted())
        #expect((state.lastSample?.services?["checkout"]?["green"]?.responses5xx ?? 0) > 0)
        #expect((state.lastSample?.services?["cart"]?["green"]?.responses5xx ?? -1) == 0)
    }

    // MARK: - a backend missing on one instance

    @Test("a backend that does not exist on lb-b: run refuses in preflight (exit 2) naming lb-b and the backend; nothing changes on either instance")
    func backendMissingOnOneInstance() async throws {
        let lab = try await FleetLab("fleet-missing-backend", options: .init(missingOnLbB: ["be_search"]))
        defer { lab.stopAll() }
        let run = try await lab.cli(["run", "blue", "green", "--policy", "fleet"])
        #expect(run.exitCode == 2, "\(run.stdout) \(run.stderr)")
        #expect(run.stderr.contains("lb-b") && run.stderr.contains("be_search"), "\(run.stderr)")
        for service in FleetLab.services {
            let (blue, green) = try await lab.servers("lb-a", service)
            #expect(blue.weight == 1 && green.weight == 0, "lb-a \(service) unchanged: blue \(blue.weight), green \(green.weight)")
        }
        for service in ["cart", "checkout"] {
            let (blue, green) = try await lab.servers("lb-b", service)
            #expect(blue.weight == 1 && green.weight == 0, "lb-b \(service) unchanged: blue \(blue.weight), green \(green.weight)")
        }
    }
}
