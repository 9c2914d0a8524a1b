import Foundation
import SwitchoverCore
import Testing

/// `run`'s default goal follows whether the policy file has a `drain` section.
struct DrainDeclaredTests {
    @Test("a policy with a drain section says so; one without gets the defaults and says it has none")
    func drainDeclared() throws {
        let without = ConfigFixture.policy
            .replacingOccurrences(of: "name: p\n", with: "name: q\n")
            .components(separatedBy: "  drain:")[0]
        let fixture = try ConfigFixture(policies: ["p.yaml": ConfigFixture.policy, "q.yaml": without])
        defer { fixture.remove() }
        let (configuration, diagnostics) = fixture.load()
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        #expect(try #require(configuration.policy(named: "p")).drainDeclared)
        let q = try #require(configuration.policy(named: "q"))
        #expect(!q.drainDeclared)
        #expect(q.drain.holdFor == .seconds(60), "the defaults still apply")
    }
}
