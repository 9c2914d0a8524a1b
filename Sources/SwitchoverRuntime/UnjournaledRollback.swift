import Foundation
import SwitchoverCore
import SwitchoverDrivers

/// All traffic back to FROM through the driver alone, for when the journal cannot be written
/// (a full disk): the emergency exit must not depend on journaling first. It does what the
/// engine's rollback does, in the same order: FROM out of drain first when its drain had begun
/// (FROM in drain takes no new requests whatever its weight), then 0% to TO, read back. Nothing
/// is journaled; the caller says that the journal is behind.
public enum UnjournaledRollback {
    /// The live weights once they read back at 0% to TO, or why not.
    /// FROM is made ready again when the journal says its drain began, or when the load balancer
    /// reads FROM's servers in drain (the journal may be behind: read from a snapshot).
    public static func perform(router: any WeightRouter, fromWasDrained: Bool) async -> Result<LiveWeights, any Error> {
        do {
            let inDrain = (try? await router.currentWeights())?.inDrain(of: router.fromCluster.servers) ?? []
            if fromWasDrained || !inDrain.isEmpty {
                do {
                    try await router.setReady(cluster: router.fromCluster.cluster)
                } catch let error as LoadBalancerError where error.code == .unsupported {
                    // No drain state (Envoy): the weights alone decide.
                }
            }
            let live = try await router.apply(percentToTarget: 0)
            guard live.assignment.toTotal == 0, live.assignment.fromTotal > 0 else {
                return .failure(RuntimeError(.loadBalancer, "read back \(format(live.effectivePercentToTarget))% to \(router.toCluster.cluster)"))
            }
            return .success(live)
        } catch {
            return .failure(error)
        }
    }
}
