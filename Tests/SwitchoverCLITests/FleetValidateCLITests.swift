import Foundation
import SwitchoverTestKit
import Testing

/// The fleet form of the configuration (DESIGN.md section 3, "Many services, several
/// load-balancer instances"; issue 14) through the built binary: `validate` accepts it, `plan`
/// prints every service's weights per instance, and each kind of bad input is refused with exit 2
/// and a `FILE:LINE:COL: message` line where the mistake is. No server runs: a socket is only a
/// name to `validate` and `plan`.
enum FleetFiles {
    static let blue = cluster("blue", version: "1.27.4", revision: "1-27")
    static let green = cluster("green", version: "1.28.0", revision: "1-28")

    /// A cluster of the fleet: three services, checkout on two servers.
    static func cluster(_ side: String, version: String, revision: String) -> String {
        """
        apiVersion: switchover.dev/v1alpha1
        kind: Cluster
        metadata:
          name: \(side)
        spec:
          istio:
            version: "\(version)"
            revision: "\(revision)"
          trust:
            trustDomain: cluster.local
            rootCerts: ../pki/\(side)/root-cert.pem
            certChain: ../pki/\(side)/cert-chain.pem
          loadBalancer:
            services:
              cart: [\(side)-cart-1]
              checkout: [\(side)-checkout-1, \(side)-checkout-2]
              search: [\(side)-search-1]

        """
    }

    static let policy = """
        apiVersion: switchover.dev/v1alpha1
        kind: Policy
        metadata:
          name: fleet
        spec:
          loadBalancer:
            driver: haproxy
            haproxy:
              instances:
                - {name: lb-a, socket: tcp://127.0.0.1:9901}
                - {name: lb-b, socket: /run/haproxy-b/admin.sock}
              services:
                cart: be_cart
                checkout: be_checkout
                search: be_search
          waves:
            - [cart]
            - [checkout, search]
          steps: [10, 50, 100]
          bake: 5s
          interval: 1s
          failureThreshold: 2
          gates:
            - name: green-errors
              loadBalancer: {cluster: green, max5xxRatio: 0.05, minRequests: 10}
          rollback:
            automatic: true
            hardSignal: {max5xxRatio: 0.5, minRequests: 10}
          drain:
            maxActiveSessions: 0
            holdFor: 5s
            dnsTTL: 0s
            timeout: 2m

        """

    /// The policy's HAProxy section, and an Envoy one for the same services (two Envoys, one
    /// route per service, each Envoy its own files).
    static let haproxySection = """
            driver: haproxy
            haproxy:
              instances:
                - {name: lb-a, socket: tcp://127.0.0.1:9901}
                - {name: lb-b, socket: /run/haproxy-b/admin.sock}
              services:
                cart: be_cart
                checkout: be_checkout
                search: be_search

        """
    static let envoySection = """
            driver: envoy
            envoy:
              services: {cart: cart_route, checkout: checkout_route, search: search_route}
              instances:
                - {name: edge-a, admin: http://127.0.0.1:9901, routeFiles: {cart: a/cart.yaml, checkout: a/checkout.yaml, search: a/search.yaml}}
                - {name: edge-b, admin: http://127.0.0.1:9902, routeFiles: {cart: b/cart.yaml, checkout: b/checkout.yaml, search: b/search.yaml}}

        """

    /// A folder with `clusters/blue.yaml`, `clusters/green.yaml`, `policies/fleet.yaml` (the
    /// texts given) and the example `pki/` the clusters point at.
    static func folder(blue: String = blue, green: String = green, policy: String = policy) throws -> URL {
        let folder = try TemporaryDirectory.make("cli-fleet")
        try FileManager.default.copyItem(at: checkout.appendingPathComponent("pki"), to: folder.appendingPathComponent("pki"))
        for sub in ["clusters", "policies"] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        try Data(blue.utf8).write(to: folder.appendingPathComponent("clusters/blue.yaml"))
        try Data(green.utf8).write(to: folder.appendingPathComponent("clusters/green.yaml"))
        try Data(policy.utf8).write(to: folder.appendingPathComponent("policies/fleet.yaml"))
        return folder
    }

    /// 1-based line numbers of every line of `text` that contains `marker`.
    static func lines(of marker: String, in text: String) -> [Int] {
        text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            .filter { $0.element.contains(marker) }.map { $0.offset + 1 }
    }
}

/// One kind of bad input: an edit of one file, and where a diagnostic may rightly point.
struct FleetMistake: Sendable, CustomTestStringConvertible {
    enum File: String, Sendable { case blue = "clusters/blue.yaml", green = "clusters/green.yaml", policy = "policies/fleet.yaml" }
    var label: String
    /// The edits, applied to the fleet files in order: file, text replaced, replacement.
    var edits: [(File, String, String)]
    /// A located line must mention this (a service, server, instance or socket name).
    var mentions: String
    /// Where it may point: a file and a line marker; any line containing the marker in the
    /// EDITED file, any column.
    var at: [(File, String)]

    var testDescription: String { label }

    static let all: [FleetMistake] = [
        FleetMistake(label: "a service in the policy that no cluster lists",
                     edits: [(.policy, "        search: be_search\n", "        search: be_search\n        payments: be_payments\n"),
                             (.policy, "    - [checkout, search]", "    - [checkout, search, payments]")],
                     mentions: "payments",
                     at: [(.policy, "payments: be_payments"), (.blue, "    services:"), (.green, "    services:")]),
        FleetMistake(label: "a service the clusters list that the policy does not map",
                     edits: [(.blue, "      search: [blue-search-1]\n", "      search: [blue-search-1]\n      payments: [blue-payments-1]\n"),
                             (.green, "      search: [green-search-1]\n", "      search: [green-search-1]\n      payments: [green-payments-1]\n")],
                     mentions: "payments",
                     at: [(.blue, "payments:"), (.green, "payments:"), (.policy, "      services:")]),
        FleetMistake(label: "a server in two services",
                     edits: [(.blue, "search: [blue-search-1]", "search: [blue-search-1, blue-cart-1]")],
                     mentions: "blue-cart-1",
                     at: [(.blue, "blue-cart-1")]),
        FleetMistake(label: "two instances with one name",
                     edits: [(.policy, "{name: lb-b, socket: /run/haproxy-b/admin.sock}", "{name: lb-a, socket: /run/haproxy-b/admin.sock}")],
                     mentions: "lb-a",
                     at: [(.policy, "/run/haproxy-b/admin.sock")]),
        FleetMistake(label: "two instances with one socket",
                     edits: [(.policy, "{name: lb-b, socket: /run/haproxy-b/admin.sock}", "{name: lb-b, socket: tcp://127.0.0.1:9901}")],
                     mentions: "127.0.0.1:9901",
                     at: [(.policy, "{name: lb-b,")]),
        FleetMistake(label: "a wave that names an unknown service",
                     edits: [(.policy, "    - [checkout, search]", "    - [checkout, search, payments]")],
                     mentions: "payments",
                     at: [(.policy, "[checkout, search, payments]")]),
        FleetMistake(label: "waves that name a service twice",
                     edits: [(.policy, "    - [cart]\n", "    - [cart, search]\n")],
                     mentions: "search",
                     at: [(.policy, "- [cart, search]"), (.policy, "- [checkout, search]")]),
        FleetMistake(label: "an Envoy without a route file for one service",
                     edits: [(.policy, FleetFiles.haproxySection, FleetFiles.envoySection),
                             (.policy, "routeFiles: {cart: b/cart.yaml, checkout: b/checkout.yaml, search: b/search.yaml}",
                              "routeFiles: {cart: b/cart.yaml, checkout: b/checkout.yaml}")],
                     mentions: "search",
                     at: [(.policy, "routeFiles: {cart: b/cart.yaml, checkout: b/checkout.yaml}")]),
        FleetMistake(label: "two Envoys with one admin",
                     edits: [(.policy, FleetFiles.haproxySection, FleetFiles.envoySection),
                             (.policy, "admin: http://127.0.0.1:9902", "admin: http://127.0.0.1:9901")],
                     mentions: "127.0.0.1:9901",
                     at: [(.policy, "name: edge-b")]),
        FleetMistake(label: "two Envoys writing one route file",
                     edits: [(.policy, FleetFiles.haproxySection, FleetFiles.envoySection),
                             (.policy, "routeFiles: {cart: b/cart.yaml,", "routeFiles: {cart: a/cart.yaml,")],
                     mentions: "a/cart.yaml",
                     at: [(.policy, "name: edge-b")]),
        FleetMistake(label: "waves that leave a service out",
                     edits: [(.policy, "    - [checkout, search]", "    - [checkout]")],
                     mentions: "search",
                     at: [(.policy, "  waves:"), (.policy, "- [cart]"), (.policy, "- [checkout]")]),
    ]
}

@Suite struct FleetValidateCLITests {
    @Test("the fleet configuration validates")
    func fleetIsValid() async throws {
        let folder = try FleetFiles.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try await runSwitchover(["validate"], cwd: folder)
        #expect(result.exitCode == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
        // Without waves it is valid too (every service in one wave).
        let noWaves = FleetFiles.policy.replacingOccurrences(of: "  waves:\n    - [cart]\n    - [checkout, search]\n", with: "")
        let folder2 = try FleetFiles.folder(policy: noWaves)
        defer { try? FileManager.default.removeItem(at: folder2) }
        let second = try await runSwitchover(["validate"], cwd: folder2)
        #expect(second.exitCode == 0, "\(second.stderr)")
        // The same services through two Envoys.
        try #require(FleetFiles.policy.contains(FleetFiles.haproxySection))
        let envoy = FleetFiles.policy.replacingOccurrences(of: FleetFiles.haproxySection, with: FleetFiles.envoySection)
        let folder3 = try FleetFiles.folder(policy: envoy)
        defer { try? FileManager.default.removeItem(at: folder3) }
        let third = try await runSwitchover(["plan", "blue", "green", "--policy", "fleet"], cwd: folder3)
        #expect(third.exitCode == 0, "\(third.stderr)")
        #expect(third.stdout.contains("edge-a, edge-b"), "\(third.stdout)")
    }

    @Test("plan prints every service's weights per instance")
    func planNamesEveryServiceAndInstance() async throws {
        let folder = try FleetFiles.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let text = try await runSwitchover(["plan", "blue", "green", "--policy", "fleet"], cwd: folder)
        #expect(text.exitCode == 0, "\(text.stderr)")
        for name in ["cart", "checkout", "search", "lb-a", "lb-b",
                     "blue-cart-1", "green-cart-1", "blue-checkout-2", "green-checkout-2", "blue-search-1", "green-search-1"] {
            #expect(text.stdout.contains(name), "plan does not print \(name):\n\(text.stdout)")
        }
        let json = try await runSwitchover(["plan", "blue", "green", "--policy", "fleet", "--output", "json"], cwd: folder)
        #expect(json.exitCode == 0, "\(json.stderr)")
        _ = try parseJSON(json.stdout)
        for name in ["cart", "checkout", "search", "lb-a", "lb-b"] {
            #expect(json.stdout.contains("\"\(name)\""), "plan --output json does not name \(name):\n\(json.stdout)")
        }
    }

    @Test("a pair whose clusters share a server in one service: plan refuses it (validate has no pair), and a service mismatch is said once, not once per check")
    func pairProblems() async throws {
        let shared = FleetFiles.green.replacingOccurrences(of: "search: [green-search-1]", with: "search: [blue-search-1]")
        let folder = try FleetFiles.folder(green: shared)
        defer { try? FileManager.default.removeItem(at: folder) }
        let plan = try await runSwitchover(["plan", "blue", "green", "--policy", "fleet"], cwd: folder)
        #expect(plan.exitCode == 2, "\(plan.stdout) \(plan.stderr)")
        #expect(plan.stderr.contains("share load-balancer servers") && plan.stderr.contains("blue-search-1"), "\(plan.stderr)")

        let unmapped = FleetFiles.policy.replacingOccurrences(of: "        search: be_search\n", with: "")
            .replacingOccurrences(of: "    - [checkout, search]", with: "    - [checkout]")
        let folder2 = try FleetFiles.folder(policy: unmapped)
        defer { try? FileManager.default.removeItem(at: folder2) }
        let second = try await runSwitchover(["plan", "blue", "green", "--policy", "fleet"], cwd: folder2)
        #expect(second.exitCode == 2, "\(second.stdout) \(second.stderr)")
        let located = locatedLines(second.stderr).filter { $0.contains("search") }
        #expect(!located.isEmpty, "\(second.stderr)")
        #expect(Set(located).count == located.count, "a diagnostic said twice:\n\(second.stderr)")
    }

    @Test("bad fleet input: exit 2, a FILE:LINE:COL line where the mistake is, naming it", arguments: FleetMistake.all)
    func badInput(_ mistake: FleetMistake) async throws {
        var texts: [FleetMistake.File: String] = [.blue: FleetFiles.blue, .green: FleetFiles.green, .policy: FleetFiles.policy]
        for (file, old, new) in mistake.edits {
            let text = try #require(texts[file])
            try #require(text.contains(old), "\(file.rawValue) has no \(old)")
            texts[file] = text.replacingOccurrences(of: old, with: new)
        }
        let folder = try FleetFiles.folder(blue: texts[.blue]!, green: texts[.green]!, policy: texts[.policy]!)
        defer { try? FileManager.default.removeItem(at: folder) }
        let allowed = Set(mistake.at.flatMap { file, marker in
            FleetFiles.lines(of: marker, in: texts[file]!).map { "./\(file.rawValue):\($0):" }
        })
        try #require(!allowed.isEmpty, "the test's markers match no line")

        for args in [["validate"], ["plan", "blue", "green", "--policy", "fleet"]] {
            let result = try await runSwitchover(args, cwd: folder)
            #expect(result.exitCode == 2, "\(mistake.label): \(args): \(result.stdout) \(result.stderr)")
            #expect(result.stdout.isEmpty, "diagnostics go to stderr: \(result.stdout)")
            let located = locatedLines(result.stderr)
            let matching = located.filter { line in allowed.contains { line.hasPrefix($0) } && line.contains(mistake.mentions) }
            #expect(!matching.isEmpty, "\(mistake.label): \(args): no located line at \(allowed.sorted()) naming '\(mistake.mentions)':\n\(result.stderr)")
        }
    }
}
