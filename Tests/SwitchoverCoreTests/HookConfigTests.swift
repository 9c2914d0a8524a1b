import Foundation
import SwitchoverCore
import Testing

/// `webhooks` and `notifications` in a policy (DESIGN.md §3 "Webhooks and notifications").
@Suite struct HookConfigTests {
    static func policy(_ extra: String) -> String {
        ConfigFixture.policy + extra
    }

    /// Loads `extra` appended to the fixture's policy spec; the secret file `pki/key` is written
    /// with `mode` first.
    static func load(_ extra: String, mode: Int = 0o600) throws -> (Configuration, [Diagnostic], ConfigFixture) {
        let fixture = try ConfigFixture(policies: ["p.yaml": policy(extra)])
        try fixture.write("s3cret\n", to: "pki/key")
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: fixture.path("pki/key"))
        let (configuration, problems) = fixture.load()
        return (configuration, problems, fixture)
    }

    static let good = """
          webhooks:
            - {name: smoke, type: pre-rollout, url: http://127.0.0.1:8080/smoke, timeout: 30s}
            - {name: approve, type: confirm-promotion, url: https://ops.example/approve, timeout: 5s, metadata: {team: payments}}
            - {name: check, type: rollout, url: http://127.0.0.1:8080/check}
            - {name: panic, type: rollback, url: http://127.0.0.1:8080/panic, secretFile: ../pki/key}
          notifications:
            - {name: ops, url: http://127.0.0.1:8080/slack, format: slack, events: [rolledBack, promoted, paused, drained]}
            - {name: audit, url: http://127.0.0.1:8080/audit, format: json, events: [stepCompleted, hookWaiting], secretFile: ../pki/key}

        """

    @Test("hooks and notifications load; a rollout hook is a gate too")
    func loads() throws {
        let (configuration, problems, fixture) = try Self.load(Self.good)
        defer { fixture.remove() }
        #expect(problems.isEmpty, "\(problems)")
        let policy = try #require(configuration.policy(named: "p"))
        #expect(policy.webhooks.map(\.name) == ["smoke", "approve", "check", "panic"])
        #expect(policy.webhooks.map(\.type) == [.preRollout, .confirmPromotion, .rollout, .rollback])
        #expect(policy.webhooks[0].timeout == .seconds(30))
        #expect(policy.webhooks[2].timeout == .seconds(1))  // rollout: at most the interval (1s)
        #expect(policy.webhooks[1].timeout == .seconds(5))
        #expect(policy.webhooks[1].metadata == ["team": "payments"])
        #expect(policy.webhooks[3].secretFile == fixture.path("pki/key"))
        #expect(policy.gates.map(\.name) == ["g", "prom", "check"])
        #expect(policy.notifications.map(\.format) == [.slack, .json])
        #expect(policy.notifications[0].events == ["rolledBack", "promoted", "paused", "drained"])
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var yaml: String
        var at: String
        var message: String
        var mode: Int = 0o600
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "a URL that is not http(s)", yaml: "  webhooks:\n    - {name: a, type: rollout, url: ftp://x/y}\n",
             at: "ftp://x/y", message: "'url' must be an http:// or https:// URL"),
        Case(name: "an unknown hook type, with a suggestion", yaml: "  webhooks:\n    - {name: a, type: confirm-promote, url: http://x/}\n",
             at: "confirm-promote", message: "unknown webhook type 'confirm-promote'; known types: confirm-rollout, pre-rollout"),
        Case(name: "an unknown event", yaml: "  notifications:\n    - {name: n, url: http://x/, format: json, events: [promoted, rolledback]}\n",
             at: "rolledback]", message: "unknown event 'rolledback'; did you mean 'rolledBack'?"),
        Case(name: "an unknown format", yaml: "  notifications:\n    - {name: n, url: http://x/, format: teams, events: [promoted]}\n",
             at: "teams", message: "unknown notification format 'teams'; known formats: slack, json"),
        Case(name: "a misspelt key in a hook", yaml: "  webhooks:\n    - {name: a, type: rollout, url: http://x/, timout: 5s}\n",
             at: "timout", message: "unknown key 'timout' in webhooks[0]; did you mean 'timeout'?"),
        Case(name: "a secret file readable by every user",
             yaml: "  notifications:\n    - {name: n, url: http://x/, format: json, events: [promoted], secretFile: ../pki/key}\n",
             at: "../pki/key", message: "is readable by every user (mode 644)", mode: 0o644),
        Case(name: "a missing secret file",
             yaml: "  notifications:\n    - {name: n, url: http://x/, format: json, events: [promoted], secretFile: ../pki/nokey}\n",
             at: "../pki/nokey", message: "'secretFile': no such file"),
        Case(name: "a hook named like a gate", yaml: "  webhooks:\n    - {name: prom, type: rollout, url: http://x/}\n",
             at: "prom, type", message: "webhook name 'prom' is also a gate's"),
        Case(name: "a rollout hook's timeout longer than the interval", yaml: "  webhooks:\n    - {name: a, type: rollout, url: http://x/, timeout: 5s}\n",
             at: "5s}", message: "a rollout hook is evaluated every 'interval' (1s) like any gate: its 'timeout' (5s) must not be longer"),
        Case(name: "no events", yaml: "  notifications:\n    - {name: n, url: http://x/, format: json, events: []}\n",
             at: "[]}", message: "'events' is empty"),
    ]

    @Test("bad hooks and notifications are errors at FILE:LINE:COL", arguments: cases)
    func errors(_ c: Case) throws {
        let (_, problems, fixture) = try Self.load(c.yaml, mode: c.mode)
        defer { fixture.remove() }
        #expect(problems.count == 1, "\(problems)")
        let problem = try #require(problems.first)
        #expect(problem.message.contains(c.message), "\(problem.message)")
        let text = Self.policy(c.yaml)
        let offset = try #require(text.range(of: c.at)).lowerBound
        let before = text[..<offset]
        let line = before.filter { $0 == "\n" }.count + 1
        let column = before.count - (before.lastIndex(of: "\n").map { before.distance(from: before.startIndex, to: $0) + 1 } ?? 0) + 1
        #expect(problem.location.file.hasSuffix("policies/p.yaml"))
        #expect(problem.location.line == line)
        #expect(problem.location.column == column)
    }

    @Test("a receiver's URL path never reaches the policy fingerprint the journal keeps; adding a first hook is an edit")
    func fingerprintHidesPaths() throws {
        let (configuration, problems, fixture) = try Self.load("""
              notifications:
                - {name: ops, url: https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX, format: slack, events: [promoted]}
              webhooks:
                - {name: gate, type: rollout, url: https://ci.example/hooks/TOKEN123/check}

            """)
        defer { fixture.remove() }
        #expect(problems.isEmpty, "\(problems)")
        let policy = try #require(configuration.policy(named: "p"))
        let fingerprint = PolicyFingerprint(policy)
        let text = fingerprint.fields.values.joined(separator: "\n")
        #expect(!text.contains("XXXXSECRETXXXX") && !text.contains("TOKEN123"), "\(text)")
        #expect(text.contains("https://hooks.slack.com/services/…#"))
        var without = policy
        without.notifications = []
        #expect(!PolicyFingerprint(without).changes(to: fingerprint).isEmpty)
    }

    @Test("a secretFile that is a link (a Kubernetes Secret volume) is judged by the file it leads to; one of line breaks only is empty")
    func secretFileLinks() throws {
        let fixture = try ConfigFixture(policies: ["p.yaml": Self.policy("""
              notifications:
                - {name: n, url: http://x/, format: json, events: [promoted], secretFile: ../pki/link}
                - {name: m, url: http://x/, format: json, events: [promoted], secretFile: ../pki/blank}

            """)])
        defer { fixture.remove() }
        try fixture.write("s3cret\n", to: "pki/..data-key")
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: fixture.path("pki/..data-key"))
        try FileManager.default.createSymbolicLink(atPath: fixture.path("pki/link"), withDestinationPath: "..data-key")
        try fixture.write("\n\n", to: "pki/blank")
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: fixture.path("pki/blank"))
        let (_, problems) = fixture.load()
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.first?.message.contains("pki/blank' is empty") == true, "\(problems)")
    }
}
