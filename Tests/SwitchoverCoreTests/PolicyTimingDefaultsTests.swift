import Foundation
@testable import SwitchoverCore
import SwitchoverTestKit
import Testing

/// Issue 11, item 10: the gate interval and the sampling period fit the bake when they are not
/// written, and a sampling period that would silently stretch them is an error.
@Suite struct PolicyTimingDefaultsTests {
    func load(_ policy: String) throws -> (Policy?, [Diagnostic]) {
        let fixture = try ConfigFixture(policies: ["p.yaml": policy])
        defer { fixture.remove() }
        let (configuration, diagnostics) = fixture.load()
        return (configuration.policy(named: "p"), diagnostics)
    }

    func policy(bake: String, interval: String? = nil, sampling: String? = nil) -> String {
        var timing = "  bake: \(bake)\n"
        if let interval { timing += "  interval: \(interval)\n" }
        if let sampling { timing += "  sampling: \(sampling)\n" }
        return ConfigFixture.policy.replacingOccurrences(of: "  bake: 30s\n  interval: 1s\n", with: timing)
    }

    @Test("defaults: interval 1s or the bake if shorter; sampling 250ms or the interval if shorter", arguments: [
        ("30s", nil, Duration.seconds(1), Duration.milliseconds(250)),
        ("1s", nil, .seconds(1), .milliseconds(250)),
        ("500ms", nil, .milliseconds(500), .milliseconds(250)),
        ("100ms", nil, .milliseconds(100), .milliseconds(100)),
        ("30s", "200ms", .milliseconds(200), .milliseconds(200)),
    ])
    func defaultsFitTheBake(_ bake: String, _ interval: String?, _ expectedInterval: Duration, _ expectedSampling: Duration) throws {
        let (policy, diagnostics) = try load(policy(bake: bake, interval: interval))
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        #expect(policy?.interval == expectedInterval)
        #expect(policy?.sampling == expectedSampling)
    }

    @Test("sampling longer than the interval is an error at 'sampling'", arguments: [
        ("30s", "1s", "2s", "'sampling' (2s) is longer than 'interval' (1s): gates are evaluated on sampling ticks, so they would run every 2s; shorten 'sampling' or set 'interval' to at least 2s"),
        ("30s", nil, "5s", "'sampling' (5s) is longer than the default 'interval' (1s, 1s or 'bake' if shorter): gates are evaluated on sampling ticks, so they would run every 5s; shorten 'sampling' or set 'interval' to at least 5s"),
        ("500ms", nil, "1s", "'sampling' (1s) is longer than the default 'interval' (500ms, 1s or 'bake' if shorter): gates are evaluated on sampling ticks, so they would run every 1s; shorten 'sampling' or set 'interval' to at least 1s"),
    ])
    func samplingLongerThanTheInterval(_ bake: String, _ interval: String?, _ sampling: String, _ message: String) throws {
        let text = policy(bake: bake, interval: interval, sampling: sampling)
        let (policy, diagnostics) = try load(text)
        #expect(policy == nil)
        #expect(diagnostics.map(\.message) == [message])
        let at = try #require(position(of: "sampling: \(sampling)", in: text))
        #expect(diagnostics.first?.location.line == at.line && diagnostics.first?.location.column == at.column + "sampling: ".count)
    }

    @Test func samplingEqualToTheIntervalIsFine() throws {
        let (policy, diagnostics) = try load(policy(bake: "30s", interval: "1s", sampling: "1s"))
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        #expect(policy?.sampling == .seconds(1))
    }

    /// With the old fixed 1s interval, a 500ms bake had its first evaluation at 1s: the step
    /// lasted twice what the file (and the journal's "baked 0.5s") said. Driven on a manual clock
    /// ticking every sampling period, as the coordinator does.
    @Test func aHalfSecondBakeWithNoIntervalEndsAfterHalfASecond() throws {
        // The Prometheus gate alone: its results are fed in, as the coordinator's gate tasks do.
        let text = policy(bake: "500ms")
            .replacingOccurrences(of: "    - name: g\n      loadBalancer: {cluster: green, max5xxRatio: 0.01, minRequests: 5}\n", with: "")
        let (loaded, diagnostics) = try load(text)
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        var harness = Harness(try #require(loaded))
        harness.start()
        let started = harness.now
        var completedAfter: Duration?
        for _ in 0..<8 where completedAfter == nil {
            harness.advance(harness.engine.policy.sampling)
            var actions = harness.send(.tick)
            actions += harness.answer(actions, with: .pass("ok"))
            // The runtime ticks again after feeding results (the gate results arrive within the turn).
            actions += harness.send(.tick)
            if !actions.events(.stepCompleted).isEmpty { completedAfter = harness.now - started }
        }
        #expect(completedAfter == .milliseconds(500))
    }
}
