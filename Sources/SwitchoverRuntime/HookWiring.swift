import Foundation
import Logging
import SwitchoverCore
import SwitchoverNet
import SwitchoverSignals
import SwitchoverStore

/// The policy's webhooks and notifications, built for one run: the sources the engine asks
/// (`rollout` hooks as gates, confirmation, pre-rollout and rollback hooks), the run's facts
/// every body carries, and the `Notifier` (notifications, `event` and `post-rollout` hooks)
/// whose deliveries are journaled.
struct HookWiring: Sendable {
    let facts: RunFactsBox
    let sources: [String: any SignalSource]
    let notifier: Notifier?

    /// How long the end of a run waits for receivers to take what is queued. A dead or slow one
    /// costs the run's end this much at most; what it did not take is journaled as undelivered.
    static let finishGrace: Duration = .seconds(2)

    /// Every `secretFile` read now, before anything is journaled or changed: a key that went
    /// missing since `validate` refuses the run (exit 2). Keys are never logged.
    static func signers(for policy: Policy) throws(HookError) -> [String: BodySigner] {
        var signers: [String: BodySigner] = [:]
        let files = policy.webhooks.compactMap(\.secretFile) + policy.notifications.compactMap(\.secretFile)
        for file in files where signers[file] == nil { signers[file] = try BodySigner(file: file) }
        return signers
    }

    init(policy: Policy, policyName: String, runID: Int64, from: String, to: String, state: CutoverState,
         signers: [String: BodySigner], http: HTTPClient, journal: any JournalStore, fence: Int64?,
         reporter: any Reporter, logger: Logger) {
        facts = RunFactsBox(RunFacts(run: runID, from: from, to: to, policy: policyName, phase: state.phase,
                                     step: state.step, percent: state.percentToTarget))
        let post = HookPost(client: http)
        var sources: [String: any SignalSource] = [:]
        for hook in policy.webhooks where hook.type != .event && hook.type != .postRollout {
            sources[hook.name] = WebhookSource(hook: hook, post: post, facts: facts, signer: hook.secretFile.flatMap { signers[$0] },
                                               clock: Coordinator.wallClock)
        }
        self.sources = sources
        notifier = Notifier(policy: policy, post: post, facts: facts, signers: signers, logger: logger) { delivery in
            guard !delivery.delivered || delivery.journalIfDelivered else { return }
            let message = delivery.delivered
                ? "\(delivery.receiver) told of \(delivery.event): \(delivery.detail)"
                : "\(delivery.receiver) not told of \(delivery.event): \(delivery.detail)"
            let kind = delivery.delivered ? "notificationDelivered" : "notificationUndelivered"
            // A journal that refuses (the lease lost) loses a delivery record, never the run.
            _ = try? journal.append(JournalEvent(run: runID, at: Coordinator.wallClock(), kind: kind,
                                                 detail: WriteAheadInterpreter.encode([
                                                    "message": message, "receiver": delivery.receiver, "event": delivery.event,
                                                    "attempts": "\(delivery.attempts)",
                                                 ])), fence: fence)
            reporter.note(kind: kind, message)
        }
    }

    /// For a command carried out with no coordinator running (`rollback`, `decommission`): the
    /// same notifications, but never a refusal: a signing key that cannot be read leaves the run's
    /// notifications out, saying so, rather than stopping the emergency exit.
    static func offline(policy: Policy, run: RunRecord, state: CutoverState, journal: any JournalStore, fence: Int64?,
                        reporter: any Reporter, logger: Logger) -> HookWiring? {
        guard !policy.notifications.isEmpty || policy.webhooks.contains(where: { $0.type == .event || $0.type == .postRollout }) else {
            return nil
        }
        do {
            return HookWiring(policy: policy, policyName: run.policy, runID: run.id, from: run.from, to: run.to, state: state,
                              signers: try signers(for: policy), http: HTTPClient(logger: logger), journal: journal, fence: fence,
                              reporter: reporter, logger: logger)
        } catch {
            logger.warning("notifications not sent: \(error)")
            return nil
        }
    }

    /// The reporter the coordinator is given: the CLI's, and the notifier told of every event.
    func reporter(wrapping inner: any Reporter) -> any Reporter {
        guard let notifier else { return inner }
        return NotifyingReporter(inner: inner, notifier: notifier)
    }
}

/// Passes everything to `inner` and tells the notifier of every journaled engine event.
struct NotifyingReporter: Reporter {
    let inner: any Reporter
    let notifier: Notifier

    func event(_ event: EngineEvent, at: Instant) {
        inner.event(event, at: at)
        notifier.tell(event, at: at)
    }

    func notify(_ message: String) { inner.notify(message) }
    func note(kind: String, _ message: String) { inner.note(kind: kind, message) }
    func progress(_ progress: @autoclosure () -> ProgressSnapshot) { inner.progress(progress()) }
    func finish(_ line: String?) { inner.finish(line) }
}
