import Foundation
import SwitchoverCore
import SwitchoverTestKit
import Testing

/// Issue 11, item 8: what a file can make the loader do and say is bounded by the file's size,
/// not by what its aliases or lists expand to.
@Suite struct LoaderLimitsTests {
    func load(policy: String, clusters: [String: String] = ConfigFixture.defaultClusters) throws -> [Diagnostic] {
        let fixture = try ConfigFixture(clusters: clusters, policies: ["p.yaml": policy])
        defer { fixture.remove() }
        return fixture.load().1
    }

    @Test func aLongValueIsQuotedShortWithItsLength() throws {
        let blob = String(repeating: "x", count: 100_000)
        let diagnostics = try load(policy: ConfigFixture.policy.replacingOccurrences(of: "bake: 30s", with: "bake: \(blob)"))
        #expect(diagnostics.count == 1)
        let message = try #require(diagnostics.first?.message)
        #expect(message == "'bake' must be a duration such as 250ms, 30s, 5m, 24h or 30d, got '\(blob.prefix(60))…' (100000 bytes)")
    }

    @Test func aValueWithLineBreaksStaysOnOneLine() throws {
        let diagnostics = try load(policy: ConfigFixture.policy.replacingOccurrences(of: "bake: 30s", with: "bake: \"30\\nseconds\\u0007\""))
        #expect(diagnostics.map(\.message) == ["'bake' must be a duration such as 250ms, 30s, 5m, 24h or 30d, got '30\\nseconds\\u{7}'"])
    }

    @Test func anUnknownKeyAsLongAsABlobGetsNoSuggestionAndAShortQuote() throws {
        let key = String(repeating: "bake", count: 10_000)
        let diagnostics = try load(policy: ConfigFixture.policy.replacingOccurrences(of: "  bake: 30s", with: "  bake: 30s\n  ? \(key)\n  : 1"))
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.message.hasPrefix("unknown key '\(key.prefix(60))…' (40000 bytes) in spec; known keys: ") == true,
                "\(diagnostics)")
    }

    @Test func tooManyGates() throws {
        let gate = "    - name: g\\(i)\n      loadBalancer: {cluster: green, max5xxRatio: 0.01}\n"
        let gates = (0...50).map { gate.replacingOccurrences(of: "\\(i)", with: "\($0)") }.joined()
        let policy = ConfigFixture.policy.replacingOccurrences(of: "  gates:\n", with: "  gates:\n" + gates)
        let diagnostics = try load(policy: policy)
        #expect(diagnostics.map(\.message) == ["'gates' has 53 entries; at most 50 (every gate is evaluated every interval)"])
    }

    @Test func tooManyServers() throws {
        let servers = "[" + (1...5_001).map { "green-\($0)" }.joined(separator: ", ") + "]"
        let diagnostics = try load(policy: ConfigFixture.policy, clusters: [
            "blue.yaml": ConfigFixture.cluster("blue", servers: "[blue-1]"),
            "green.yaml": ConfigFixture.cluster("green", servers: servers),
        ])
        #expect(diagnostics.map(\.message) == ["'servers' has 5001 entries; at most 5000 (a weight is written and read back for every server at every step)"])
    }

    @Test func theLargestListsAreRead() throws {
        let steps = "[" + (1...100).map(String.init).joined(separator: ", ") + "]"
        let servers = "[" + (1...5_000).map { "green-\($0)" }.joined(separator: ", ") + "]"
        let fixture = try ConfigFixture(clusters: [
            "blue.yaml": ConfigFixture.cluster("blue", servers: "[blue-1, blue-2]"),
            "green.yaml": ConfigFixture.cluster("green", servers: servers),
        ], policies: ["p.yaml": ConfigFixture.policy.replacingOccurrences(of: "[1, 50, 100]", with: steps)])
        defer { fixture.remove() }
        let (configuration, diagnostics) = fixture.load()
        #expect(diagnostics.isEmpty, "\(diagnostics.prefix(3))")
        #expect(configuration.policy(named: "p")?.steps.count == 100)
        #expect(configuration.cluster(named: "green")?.loadBalancer.servers.count == 5_000)
    }

    @Test func aFileOverOneMebibyteIsNotRead() throws {
        let policy = ConfigFixture.policy + "# " + String(repeating: "x", count: 1 << 20) + "\n"
        let fixture = try ConfigFixture(policies: ["p.yaml": policy])
        defer { fixture.remove() }
        let diagnostics = fixture.load().1
        #expect(diagnostics.map(\.description) == [
            "\(fixture.path("policies/p.yaml")): the file is \(policy.utf8.count) bytes; a Switchover file is at most 1 MiB (1048576 bytes), so it is not read",
        ])
    }

    @Test func aFileOfExactlyOneMebibyteIsRead() throws {
        var policy = ConfigFixture.policy + "# "
        policy += String(repeating: "x", count: (1 << 20) - policy.utf8.count - 1) + "\n"
        #expect(policy.utf8.count == 1 << 20)
        #expect(try load(policy: policy).isEmpty)
    }

    /// Aliases of single values are what YAML anchors are for in a file like this, and work.
    @Test func aliasesOfSingleValuesAreRead() throws {
        let policy = ConfigFixture.policy
            .replacingOccurrences(of: "url: http://127.0.0.1:9090", with: "url: &prometheus http://127.0.0.1:9090")
            .replacingOccurrences(of: "  drain:", with: "    - name: prom2\n      prometheus: {url: *prometheus, query: up, min: 1}\n  drain:")
        let fixture = try ConfigFixture(policies: ["p.yaml": policy])
        defer { fixture.remove() }
        let (configuration, diagnostics) = fixture.load()
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let gate = try #require(configuration.policy(named: "p")?.gates.last)
        #expect(gate.source == .prometheus(PrometheusGate(url: URL(string: "http://127.0.0.1:9090")!, query: "up", min: 1, max: nil)))
    }

    /// An anchor on a mapping is harmless while nothing refers to it, and refused once an alias could.
    @Test func anAnchoredMappingIsRefusedOnlyWithAliases() throws {
        let anchored = ConfigFixture.policy.replacingOccurrences(of: "loadBalancer: {cluster: green", with: "loadBalancer: &lb {cluster: green")
        #expect(try load(policy: anchored).isEmpty)
        let aliased = anchored.replacingOccurrences(of: "  drain:", with: "    - name: again\n      loadBalancer: *lb\n  drain:")
        let diagnostics = try load(policy: aliased)
        let at = try #require(position(of: "&lb", in: aliased))
        #expect(diagnostics.map { "\($0.location.line):\($0.location.column)" } == ["\(at.line):\(at.column)"])
        #expect(diagnostics.first?.message.hasPrefix("YAML anchor '&lb' is on a list or mapping") == true, "\(diagnostics)")
    }

    @Test func the101stAliasIsRefused() throws {
        let steps = "[&one 1, " + (2...100).map { "\($0)" }.joined(separator: ", ") + "]"
        let aliases = (1...101).map { _ in "*one" }.joined(separator: ", ")
        let policy = ConfigFixture.policy
            .replacingOccurrences(of: "[1, 50, 100]", with: steps)
            .replacingOccurrences(of: "  bake: 30s", with: "  bake: 30s\n  note: [\(aliases)]")
        let diagnostics = try load(policy: policy)
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.message.hasPrefix("more than 100 YAML aliases (*name) in one file") == true, "\(diagnostics)")
    }
}
