import Foundation
import SwitchoverCore
import SwitchoverStore
import SwitchoverTestKit
import Testing

/// Webhooks and notifications through whole runs: the built `switchover` against a real
/// HAProxy, nginx backends, `hey` load, and a real HTTP receiver (`HookReceiver`, Python's
/// http.server started by PID) that records what it gets and answers as each test says.
@Suite struct HookIntegrationTests {
    /// A signing key file (mode 600) in the lab's folder.
    static func key(in lab: Lab) throws -> (path: String, key: String) {
        let key = "k-\(UUID().uuidString.prefix(12))"
        let url = lab.folder.appendingPathComponent("hook.key")
        try Data((key + "\n").utf8).write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
        return (url.path, key)
    }

    /// The HMAC-SHA256 of `body` under `key` as the `openssl` command line computes it (not
    /// the code under test).
    static func opensslHMAC(_ body: Data, key: String, in folder: URL) async throws -> String {
        let file = folder.appendingPathComponent("body-\(UUID().uuidString.prefix(6))")
        try body.write(to: file)
        let result = try await Command.run("/usr/bin/openssl", ["dgst", "-sha256", "-hmac", key, "-r", file.path])
        return String(result.output.split(separator: " ").first ?? "")
    }

    @Test("a healthy run: the receiver gets the chosen notifications in order, each signed; event and post-rollout hooks are told")
    func healthyRunNotifies() async throws {
        let receiver = try await HookReceiver.start()
        defer { receiver.stopInBackground() }
        let lab = try await CutoverLab("hooks-healthy")
        defer { lab.stopAll() }
        let (keyPath, key) = try Self.key(in: lab)
        try await lab.writeConfiguration(.init(extraSpec: [
            "webhooks:",
            "  - {name: audit, type: event, url: \(receiver.url("event")), secretFile: \(keyPath)}",
            "  - {name: cleanup, type: post-rollout, url: \(receiver.url("post")), metadata: {ticket: OPS-1}}",
            "notifications:",
            "  - {name: ops, url: \(receiver.url("json")), format: json, events: [stepCompleted, promoted], secretFile: \(keyPath)}",
            "  - {name: chat, url: \(receiver.url("slack")), format: slack, events: [promoted]}",
        ]))
        try lab.startLoad(seconds: 30)
        let coordinator = try lab.startCoordinator()
        defer { coordinator.stopInBackground() }
        #expect(try await lab.waitForExit(coordinator) == 0, "\(coordinator.logTail(lines: 30))")

        // json: every stepCompleted in step order, then promoted; each signed with the key.
        let json = receiver.requests("json")
        #expect(json.map { $0.string("event") } == ["stepCompleted", "stepCompleted", "stepCompleted", "stepCompleted", "promoted"],
                "\(json.map { $0.string("event") ?? "?" })")
        #expect(json.compactMap { $0.json?["step"] as? Int } == [1, 2, 3, 4, 4])
        for request in json {
            let signature = try #require(request.headers["x-switchover-signature"])
            #expect(signature == "sha256=" + (try await Self.opensslHMAC(request.body, key: key, in: lab.folder)))
            for field in ["run", "from", "to", "policy", "phase", "step", "percent", "event", "message", "at"] {
                #expect(request.json?[field] != nil, "\(field) missing from \(String(decoding: request.body, as: UTF8.self))")
            }
            #expect(request.string("from") == "blue" && request.string("to") == "green" && request.string("policy") == "test")
        }
        #expect(json.last?.json?["percent"] as? Double == 100)
        // slack: the incoming-webhook shape, unsigned (no secretFile).
        let slack = receiver.requests("slack")
        #expect(slack.count == 1)
        #expect(slack.first?.headers["x-switchover-signature"] == nil)
        #expect(slack.first?.string("text")?.contains("promoted") == true)
        #expect((slack.first?.json?["blocks"] as? [Any])?.count == 2)
        // The event hook saw the steps start and the promotion, with its name and type.
        let events = receiver.requests("event")
        #expect(events.contains { $0.string("event") == "stepStarted" })
        #expect(events.contains { $0.string("event") == "promoted" })
        #expect(events.allSatisfy { $0.string("hook") == "audit" && $0.string("type") == "event" && $0.headers["x-switchover-signature"] != nil })
        // post-rollout: once, with its metadata; its answer journaled.
        let post = receiver.requests("post")
        #expect(post.count == 1)
        #expect((post.first?.json?["metadata"] as? [String: String]) == ["ticket": "OPS-1"])
        #expect(try lab.events().contains { $0.kind == "notificationDelivered" && $0.detail.contains("post-rollout hook cleanup") })
        #expect(try !lab.events().contains { $0.kind == "notificationUndelivered" })
    }

    @Test("confirm-promotion answering 403 holds the run at the last step before 100%; status says so; flipped to 200 it promotes")
    func confirmPromotionWaits() async throws {
        let receiver = try await HookReceiver.start()
        defer { receiver.stopInBackground() }
        try receiver.answer("approve", status: 403, body: "not yet")
        let lab = try await CutoverLab("hooks-approve")
        defer { lab.stopAll() }
        try await lab.writeConfiguration(.init(extraSpec: [
            "webhooks:",
            "  - {name: approve, type: confirm-promotion, url: \(receiver.url("approve")), timeout: 2s}",
        ]))
        try lab.startLoad(seconds: 40)
        let coordinator = try lab.startCoordinator()
        defer { coordinator.stopInBackground() }
        try await lab.waitFor("waiting for approve", timeout: 60, process: coordinator) { !$0.waitingForHooks.isEmpty }
        // Asked again every interval; the run stays at step 3 (50%) meanwhile.
        try await Task.sleep(for: .seconds(3))
        #expect(receiver.requests("approve").count >= 3)
        let status = try await lab.statusJSON()
        let waiting = try #require(status["waitingFor"] as? [String: Any])
        #expect(waiting["hooks"] as? [String] == ["approve"])
        #expect(waiting["beforeStep"] as? Int == 4)
        #expect(status["step"] as? Int == 3)
        let text = try await lab.cli(["status"])
        #expect(text.stdout.contains("waiting for approve before step 4"), "\(text.stdout)")
        #expect((try await lab.liveWeights()).blue > 0)

        try receiver.answer("approve", status: 200)
        #expect(try await lab.waitForExit(coordinator) == 0, "\(coordinator.logTail(lines: 30))")
        let (blue, green) = try await lab.liveWeights()
        #expect(blue == 0 && green > 0)
        #expect(try lab.engineEvents(.hookConfirmed).count == 1)
    }

    @Test("pre-rollout answering 500: no weight ever changes on HAProxy, exit 1")
    func preRolloutRefuses() async throws {
        let receiver = try await HookReceiver.start()
        defer { receiver.stopInBackground() }
        try receiver.answer("smoke", status: 500, body: "smoke test failed")
        let lab = try await CutoverLab("hooks-pre")
        defer { lab.stopAll() }
        try await lab.writeConfiguration(.init(extraSpec: [
            "webhooks:",
            "  - {name: smoke, type: pre-rollout, url: \(receiver.url("smoke")), timeout: 5s}",
        ]))
        let (exit, _, highest, reads) = try await lab.watchingShare(every: .milliseconds(20)) {
            let coordinator = try lab.startCoordinator()
            defer { coordinator.stopInBackground() }
            let exit = try await lab.waitForExit(coordinator)
            return exit
        }
        #expect(exit == 1)
        #expect(reads > 0)
        #expect(highest == 0, "green took \(highest)% at some read")
        let state = try #require(try lab.state())
        #expect(state.phase == .aborted)
        #expect(state.reason?.contains("pre-rollout hook smoke") == true)
        #expect(state.reason?.contains("HTTP 500: smoke test failed") == true, "\(state.reason ?? "")")
        #expect(state.lastIntent == 0)
        #expect(receiver.requests("smoke").count == 1)
    }

    @Test("a rollback hook answering 200 mid-run rolls back, verified on HAProxy")
    func rollbackHookRollsBack() async throws {
        let receiver = try await HookReceiver.start()
        defer { receiver.stopInBackground() }
        try receiver.answer("panic", status: 404)
        let lab = try await CutoverLab("hooks-rollback", policy: .init(bake: "2s"))
        defer { lab.stopAll() }
        try await lab.writeConfiguration(.init(bake: "2s", extraSpec: [
            "webhooks:",
            "  - {name: panic, type: rollback, url: \(receiver.url("panic")), timeout: 2s}",
        ]))
        try lab.startLoad(seconds: 30)
        let coordinator = try lab.startCoordinator()
        defer { coordinator.stopInBackground() }
        try await lab.waitFor("step 2 verified", process: coordinator) { $0.step == 2 && $0.stepStartedAt != nil }
        try receiver.answer("panic", status: 200)
        #expect(try await lab.waitForExit(coordinator) == 1, "\(coordinator.logTail(lines: 30))")
        let (blue, green) = try await lab.liveWeights()
        #expect(blue > 0 && green == 0)
        let state = try #require(try lab.state())
        #expect(state.phase == .rolledBack && state.rollbackVerified)
        let started = try #require(try lab.engineEvents(.rollbackStarted).first)
        #expect(started.event.gate == "panic")
        #expect(coordinator.logTail(lines: 200).contains("rolled back by gate panic"))
    }

    @Test("a notification receiver that takes 30 s per request delays neither the rollback nor the end of the run; what it missed is journaled")
    func slowReceiverDelaysNothing() async throws {
        let receiver = try await HookReceiver.start()
        defer { receiver.stopInBackground() }
        try receiver.answer("slow", status: 200, delay: 30)
        let lab = try await CutoverLab("hooks-slow", policy: .init(bake: "2s", hardSignal: (0.2, 5)))
        defer { lab.stopAll() }
        try await lab.writeConfiguration(.init(bake: "2s", hardSignal: (0.2, 5), extraSpec: [
            "notifications:",
            "  - {name: pager, url: \(receiver.url("slow")), format: json, timeout: 60s,",
            "     events: [stepStarted, stepVerified, stepCompleted, hardSignal, rollbackStarted, rolledBack, rollbackVerified]}",
        ]))
        try lab.startLoad(seconds: 40)
        let coordinator = try lab.startCoordinator()
        defer { coordinator.stopInBackground() }
        try await lab.waitFor("step 2 verified", process: coordinator) { $0.step == 2 && $0.stepStartedAt != nil }
        try lab.green.fail(true)
        let failedAt = Date()
        #expect(try await lab.waitForExit(coordinator) == 1, "\(coordinator.logTail(lines: 30))")
        let ended = Date().timeIntervalSince(failedAt)
        // Four attempts of 30 s each per message would be minutes: the run ended on its own
        // time plus the notifier's grace (2 s).
        #expect(ended < 20, "the run ended \(ended)s after green failed")
        let state = try #require(try lab.state())
        #expect(state.phase == .rolledBack && state.rollbackVerified)
        // The rollback itself did not wait for the receiver (which still held every message it
        // had been sent): it started within seconds of the fault, not tens. (How fast, against the
        // same rollback without notifications, is the benchmark's figure.)
        let started = try #require(try lab.engineEvents(.rollbackStarted).first)
        let reaction = Double(started.at.millisecondsSinceEpoch) / 1000 - failedAt.timeIntervalSince1970
        #expect(reaction < 5, "rollback started \(reaction)s after the fault")
        let undelivered = try lab.events().filter { $0.kind == "notificationUndelivered" }
        #expect(undelivered.contains { $0.detail.contains("rollbackVerified") }, "\(undelivered.map(\.detail))")
        #expect(receiver.requests("slow").count >= 1)
    }

    @Test("receivers that redirect or answer garbage: a clear line in the journal for each, the run promoted all the same")
    func badReceivers() async throws {
        let receiver = try await HookReceiver.start()
        defer { receiver.stopInBackground() }
        try receiver.answer("moved", status: 302, location: "http://elsewhere.example/new/secret-path")
        try receiver.answer("junk", status: 500, body: "\u{1}\u{2}<html>oops</html>\u{7f}")
        let lab = try await CutoverLab("hooks-bad")
        defer { lab.stopAll() }
        try await lab.writeConfiguration(.init(steps: [50, 100], extraSpec: [
            "notifications:",
            "  - {name: moved, url: \(receiver.url("moved")), format: json, events: [stepStarted]}",
            "  - {name: junk, url: \(receiver.url("junk")), format: slack, events: [stepStarted]}",
        ]))
        try lab.startLoad(seconds: 20)
        let coordinator = try lab.startCoordinator()
        defer { coordinator.stopInBackground() }
        #expect(try await lab.waitForExit(coordinator) == 0, "\(coordinator.logTail(lines: 30))")
        let undelivered = try lab.events().filter { $0.kind == "notificationUndelivered" }.compactMap { event in
            (try? JSONSerialization.jsonObject(with: Data(event.detail.utf8)) as? [String: String])?["message"]
        }
        #expect(undelivered.contains { $0.contains("notification moved") && $0.contains("HTTP 302: a redirect (to http://elsewhere.example/new/…), not followed") },
                "\(undelivered)")
        #expect(undelivered.contains { $0.contains("notification junk") && $0.contains("HTTP 500: ??<html>oops</html>?") }, "\(undelivered)")
        #expect(!undelivered.joined().contains("secret-path"))
        // Retried before giving up (or cut short by the run's end).
        #expect(receiver.requests("moved").count >= 2)
    }

    @Test("a rollback carried out with no coordinator running tells the receivers too")
    func offlineRollbackNotifies() async throws {
        let receiver = try await HookReceiver.start()
        defer { receiver.stopInBackground() }
        let lab = try await CutoverLab("hooks-offline", policy: .init(bake: "30s"))
        defer { lab.stopAll() }
        try await lab.writeConfiguration(.init(bake: "30s", extraSpec: [
            "notifications:",
            "  - {name: ops, url: \(receiver.url("ops")), format: json, events: [rolledBack, rollbackVerified]}",
        ]))
        let coordinator = try lab.startCoordinator()
        defer { coordinator.stopInBackground() }
        try await lab.waitFor("step 1 verified", process: coordinator) { $0.step == 1 && $0.stepStartedAt != nil }
        coordinator.signal(SIGTERM)
        #expect(try await lab.waitForExit(coordinator) == 130)
        let rollback = try await lab.cli(["rollback", "--reason", "offline test"])
        #expect(rollback.exitCode == 0, "\(rollback.stderr)")
        #expect(receiver.requests("ops").map { $0.string("event") } == ["rolledBack", "rollbackVerified"])
        #expect(receiver.requests("ops").last?.json?["percent"] as? Double == 0)
    }
}
