import Foundation
import SwitchoverCore
import SwitchoverDrivers

extension PreflightChecks {
    /// The only check before resuming a rollback that was not verified yet: the load balancer
    /// answers. Trust and both clusters' health are not asked: a rollback sends traffic back to
    /// FROM because something is wrong, often with TO, and a failing check must not keep TO's
    /// share in place. Nor are the live weights compared with the journal: whatever they are,
    /// the rollback sets them to 0% to TO and reads them back.
    public func loadBalancerReachable(_ router: any WeightRouter) async -> PreflightResult {
        do {
            _ = try await router.currentWeights()
            return .passed
        } catch {
            return PreflightResult(failures: ["load balancer unreachable: \(error)"])
        }
    }
}
