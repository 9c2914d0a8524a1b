import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverNet
import SwitchoverSignals
import SwitchoverStore
import SwitchoverTrust

/// The checks before any traffic moves (or before a journaled run resumes): trust both ways,
/// both clusters' `health` endpoints, and the load balancer reachable with the weights the
/// journal expects. Each failure is one sentence with the numbers; nothing here writes anything.
///
/// Trust verification is passed in as a function so this module does not depend on how it is
/// done (the CLI passes `verifyTrust`); it returns the failed checks as sentences and the
/// report as JSON, which the run journals as `trustVerified` evidence (the HTML report shows it).
public struct PreflightChecks: Sendable {
    public typealias TrustCheck = @Sendable (_ from: Cluster, _ to: Cluster, _ policy: Policy) async -> TrustVerdict

    public var trust: TrustCheck
    public var http: HTTPClient
    /// Time allowed for one health probe.
    public var healthTimeout: Duration

    public init(trust: @escaping TrustCheck, http: HTTPClient, healthTimeout: Duration = .seconds(3)) {
        self.trust = trust
        self.http = http
        self.healthTimeout = healthTimeout
    }

    /// Runs every check (they do not stop at the first failure, so a person sees all of them).
    /// `expectedPercentToTarget`: the shares to TO the journal allows the live weights to be at
    /// (a fresh run: only 0; a resumed run: the verified step, or the step being applied when
    /// the coordinator stopped). `journaledInstance`: on resume, the load-balancer process that
    /// last read back the journaled weights; live weights that differ pass when another process
    /// answers now (a restart forgot them: the resumed run writes them again), and fail when the
    /// same one does (someone changed them).
    ///
    /// `pastPromotion`: resuming a run that already sent all traffic to TO (promoted, draining,
    /// drained). Then FROM's health and trust decide nothing (FROM may be on its way out, which
    /// is the point); only TO's health and the weights are checked.
    public func run(from: Cluster, to: Cluster, policy: Policy, router: any WeightRouter,
                    expectedPercentToTarget: [Double], journaledInstance: LoadBalancerInstance? = nil, restartSeen: Bool = false,
                    pastPromotion: Bool = false) async -> PreflightOutcome {
        async let trustVerdict = pastPromotion ? TrustVerdict(failures: [], reportJSON: nil) : trust(from, to, policy)
        async let healthFailures = health(of: pastPromotion ? [to] : [from, to])
        async let weightFailures = Self.weights(router, expected: expectedPercentToTarget, journaledInstance: journaledInstance,
                                                 restartSeen: restartSeen)
        // The driver's own checks (a Route53 record external-dns owns).
        async let driverFailures = router.preflight()
        // Istio's versions (from the clusters when they say how to reach them); past promotion
        // FROM may be on its way out, so they are not asked then.
        async let versions = pastPromotion ? (failures: [String](), warnings: [String]())
            : IstioVersions.check(from: from, to: to, logger: Logger(label: "switchover.kubernetes"))
        // Gates over HTTP speak only once the first step bakes: a run that could not judge them
        // must not start moving weights.
        // So do webhooks and notifications.
        let overHTTP = policy.gates.filter(\.source.speaksHTTP).map(\.name)
        let hooks = policy.webhooks.filter { $0.type != .rollout }.map(\.name) + policy.notifications.map(\.name)
        let what = [overHTTP.isEmpty ? nil : "gates over HTTP (\(overHTTP.joined(separator: ", ")))",
                    hooks.isEmpty ? nil : "webhooks and notifications (\(hooks.joined(separator: ", ")))"].compactMap { $0 }
        let httpFailures = what.isEmpty ? [] : HTTPClient.unavailable.map {
            ["\(what.joined(separator: " and ")): \($0)"]
        } ?? []
        let verdict = await trustVerdict
        let versionCheck = await versions
        return PreflightOutcome(result: PreflightResult(failures: verdict.failures + versionCheck.failures + httpFailures
                                                            + (await healthFailures) + (await weightFailures)
                                                            + (await driverFailures)),
                                trustReportJSON: verdict.reportJSON, warnings: versionCheck.warnings)
    }

    func health(of clusters: [Cluster]) async -> [String] {
        var failures: [String] = []
        for cluster in clusters {
            guard let url = cluster.health else { continue }
            // The request keeps the credentials; every message names the URL without them.
            let shown = HTTPError.redactingCredentials(url.absoluteString)
            do {
                let response = try await http.execute(HTTPRequest(method: "GET", url: url.absoluteString,
                                                                  connectTimeout: healthTimeout, timeout: healthTimeout))
                if !(200..<300).contains(response.status) {
                    failures.append("cluster \(cluster.name): health \(shown) answered HTTP \(response.status)")
                }
            } catch {
                failures.append("cluster \(cluster.name): health \(shown) did not answer: \(error)")
            }
        }
        return failures
    }

    public static func weights(_ router: any WeightRouter, expected: [Double],
                        journaledInstance: LoadBalancerInstance? = nil, restartSeen: Bool = false) async -> [String] {
        let live: LiveWeights
        do {
            live = try await router.currentWeights()
        } catch let error as LoadBalancerError where [.unreachable, .timeout].contains(error.code) {
            return ["load balancer unreachable: \(error)"]
        } catch {
            return ["load balancer: \(error)"]
        }
        return Self.weightFailures(live, router: router, expected: expected, journaledInstance: journaledInstance,
                                   restartSeen: restartSeen)
    }

    /// The weights check on a read already made (see `weights`). `restartSeen`: the journal itself
    /// records a restart of the load balancer whose repair had not read back yet (a coordinator
    /// that saw HAProxy restart, journaled the new process, and died before its weights were
    /// written again): the live weights then differ on the journaled process by the journal's own
    /// account, and the resumed run writes them again, as the engine would have.
    public static func weightFailures(_ live: LiveWeights, router: any WeightRouter, expected: [Double],
                                      journaledInstance: LoadBalancerInstance?, restartSeen: Bool = false) -> [String] {
        let to = router.toCluster.servers
        let drainedTo = live.inDrain(of: to)
        guard drainedTo.isEmpty else {
            // Whatever the weights say, TO's share goes nowhere: it would be answered 503.
            return ["load balancer \(router.address): \(router.toCluster.cluster)'s server(s) \(drainedTo.joined(separator: ", ")) "
                    + "in drain state: they take no new traffic whatever their weight; `set server … state ready` them first"]
        }
        if !live.unreachable.isEmpty {
            return live.unreachable.map { "load-balancer instance failed: \($0)" }
        }
        let liveShare = live.effectivePercentToTarget
        let matches = expected.contains { percent in
            let wanted = router.plannedPercent(percentToTarget: percent, step: nil)
            return abs(wanted - liveShare) < 1e-6 && (percent > 0 || live.assignment.toTotal == 0)
        } && live.disagreements.isEmpty
        if matches || restartSeen { return [] }
        let instance = LoadBalancerSampler.reading(live, router: router, at: Coordinator.wallClock()).instance
        if let journaledInstance, instance.isRestart(of: journaledInstance) { return [] }
        let servers = (live.assignment.all.map { "\($0.server)=\($0.weight)" } + live.disagreements).joined(separator: " ")
        let wanted = expected.map { "\(format($0))%" }.joined(separator: " or ")
        let who = journaledInstance == nil ? ""
            : " and the same load-balancer process (\(instance.id)) holds them, so someone changed them: they are not overridden"
        return ["load balancer \(router.address): live weights send \(format(liveShare))% to \(router.toCluster.cluster) (\(servers)); the journal expects \(wanted)\(who)"]
    }
}

/// The preflight's trust check: `verifyTrust` both ways, with a live handshake when both
/// clusters name a probe endpoint, within the policy's horizon. Failed checks and unreadable
/// material become sentences; the report is kept as JSON for the journal (`trustVerified`).
public let verifyTrustForPreflight: PreflightChecks.TrustCheck = { from, to, policy in
    let probe = from.trust.probe != nil && to.trust.probe != nil
    do {
        let report = try await verifyTrust(from: from, to: to, horizon: policy.trustHorizon, probe: probe, now: Date(),
                                           fetch: KubernetesTrustFetch.make(logger: Logger(label: "switchover.kubernetes")))
        return TrustVerdict(failures: report.checks.filter { $0.status == .fail }.map { "trust: \($0.name): \($0.detail)" },
                            reportJSON: try? JournalJSON.encode(report))
    } catch {
        return TrustVerdict(failures: ["trust: \(error)"], reportJSON: nil)
    }
}

/// What the trust check found: failed checks as sentences, and the whole report as JSON.
public struct TrustVerdict: Sendable {
    public var failures: [String]
    public var reportJSON: String?
    public init(failures: [String], reportJSON: String?) {
        self.failures = failures
        self.reportJSON = reportJSON
    }
}

/// The preflight's verdict and the trust evidence to journal with the run.
public struct PreflightOutcome: Sendable {
    public var result: PreflightResult
    public var trustReportJSON: String?
    /// What passes but deserves saying (a jump of more than one minor Istio version).
    public var warnings: [String] = []
    public init(result: PreflightResult, trustReportJSON: String?, warnings: [String] = []) {
        self.result = result
        self.trustReportJSON = trustReportJSON
        self.warnings = warnings
    }
}

/// A percentage or count in messages, to two decimals.
func format(_ value: Double) -> String { formatNumber(value, decimals: 2) }
