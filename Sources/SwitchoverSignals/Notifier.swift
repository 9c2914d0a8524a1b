import Foundation
import Logging
import Synchronization
import SwitchoverCore
import SwitchoverNet

/// Tells people and systems what the run does, without ever holding it up: the policy's
/// `notifications` (the events each chose, as Slack incoming-webhook JSON or the contract's
/// JSON), `event` hooks (every event the progress line shows) and `post-rollout` hooks (once,
/// when the run is promoted or its rollback verified).
///
/// Each receiver has a bounded queue and a task of its own that POSTs one message at a time,
/// retrying with backoff; `tell` only formats and enqueues, so a slow or dead receiver never
/// delays sampling, a rollback, or another receiver. What is not delivered (retries spent, the
/// queue full, the run over first) is reported to `report`, which the runtime journals.
public final class Notifier: Sendable {
    /// One message's fate.
    public struct Delivery: Sendable, Hashable {
        /// `notification ops`, `event hook audit`, `post-rollout hook cleanup`.
        public var receiver: String
        public var event: String
        public var delivered: Bool
        public var attempts: Int
        /// `HTTP 200`, or why it was not delivered.
        public var detail: String
        /// Worth a journal line even when delivered (a post-rollout hook's answer).
        public var journalIfDelivered: Bool
    }

    /// Attempts per message and the waits between them (doubling from `firstBackoff`).
    public struct Retries: Sendable, Hashable {
        public var attempts: Int
        public var firstBackoff: Duration
        public var maxBackoff: Duration
        public init(attempts: Int = 4, firstBackoff: Duration = .milliseconds(500), maxBackoff: Duration = .seconds(5)) {
            self.attempts = attempts
            self.firstBackoff = firstBackoff
            self.maxBackoff = maxBackoff
        }
    }

    struct Message: Sendable {
        var id: Int
        var event: String
        var body: Data
        var journalIfDelivered: Bool
    }

    /// One receiver: where, how, and its queue.
    final class Receiver: Sendable {
        let label: String
        let url: URL
        let timeout: Duration
        let signer: BodySigner?
        let stream: AsyncStream<Message>
        let continuation: AsyncStream<Message>.Continuation
        /// Messages enqueued and not yet finished (delivered or given up), by id. Whoever removes a
        /// message reports it (`take`): a message is reported once, by its worker or by `finish`.
        let pending = Mutex<[Int: Message]>([:])
        /// Messages the full queue dropped (the oldest first) since the first was reported.
        let droppedSinceReported = Mutex<Int>(0)
        let done = Atomic<Bool>(false)

        init(label: String, url: URL, timeout: Duration, signer: BodySigner?, capacity: Int) {
            self.label = label
            self.url = url
            self.timeout = timeout
            self.signer = signer
            // Full: the oldest message goes, never the newest (a rollback told now matters more
            // than a step started minutes ago).
            (stream, continuation) = AsyncStream.makeStream(of: Message.self, bufferingPolicy: .bufferingNewest(capacity))
        }

        /// Removes `id` from the pending messages; true when it was still there (so the caller reports it).
        func take(_ id: Int) -> Bool { pending.withLock { $0.removeValue(forKey: id) != nil } }
        var backlog: Int { pending.withLock { $0.count } }
    }

    struct Subscription: Sendable {
        let receiver: Receiver
        let format: NotificationTarget.Format
        let wants: @Sendable (EngineEvent) -> Bool
        /// For hooks: their name, type and metadata go in the body.
        let hook: Webhook?
    }

    private let subscriptions: [Subscription]
    private let postRollout: [(Receiver, Webhook)]
    private let receivers: [Receiver]
    private let post: HookPost
    private let facts: RunFactsBox
    private let retries: Retries
    private let report: @Sendable (Delivery) -> Void
    private let workers = Mutex<[Task<Void, Never>]>([])
    private let nextID = Atomic<Int>(0)
    private let postRolloutSent = Atomic<Bool>(false)
    private let logger: Logger

    /// The events an `event` hook is told of: those the progress line shows, and failed gates.
    public static let shownKinds: Set<EngineEvent.Kind> = [
        .phaseChanged, .stepStarted, .stepVerified, .stepCompleted, .rollbackStarted, .rollbackVerified,
        .paused, .resumed, .weightsMismatch, .commandAccepted, .commandRefused, .gateHeld,
        .drained, .drainActivity, .drainTimedOut, .forceClose, .decommissioned,
        .hookWaiting, .hookConfirmed, .hookRefused, .hookRollback,
    ]

    public static func shown(_ event: EngineEvent) -> Bool {
        shownKinds.contains(event.kind)
            || (event.kind == .gateEvaluated && (event.outcome?.verdict == .fail || event.outcome?.verdict == .error))
    }

    /// Nil when the policy has no notifications, `event` or `post-rollout` hooks.
    /// `signers`: by `secretFile` path, read when the run started.
    public init?(policy: Policy, post: HookPost, facts: RunFactsBox, signers: [String: BodySigner],
                 retries: Retries = Retries(), capacity: Int = 256, logger: Logger,
                 report: @escaping @Sendable (Delivery) -> Void) {
        var subscriptions: [Subscription] = []
        var postRollout: [(Receiver, Webhook)] = []
        var receivers: [Receiver] = []
        for target in policy.notifications {
            let receiver = Receiver(label: "notification \(target.name)", url: target.url, timeout: target.timeout,
                                    signer: target.secretFile.flatMap { signers[$0] }, capacity: capacity)
            receivers.append(receiver)
            let events = target.events
            subscriptions.append(Subscription(receiver: receiver, format: target.format,
                                              wants: { event in events.contains { NotificationEvents.matches($0, event) } },
                                              hook: nil))
        }
        for hook in policy.webhooks where hook.type == .event || hook.type == .postRollout {
            let receiver = Receiver(label: "\(hook.type.rawValue) hook \(hook.name)", url: hook.url, timeout: hook.timeout,
                                    signer: hook.secretFile.flatMap { signers[$0] }, capacity: capacity)
            receivers.append(receiver)
            if hook.type == .event {
                subscriptions.append(Subscription(receiver: receiver, format: .json, wants: Notifier.shown, hook: hook))
            } else {
                postRollout.append((receiver, hook))
            }
        }
        guard !receivers.isEmpty else { return nil }
        self.subscriptions = subscriptions
        self.postRollout = postRollout
        self.receivers = receivers
        self.post = post
        self.facts = facts
        self.retries = retries
        self.report = report
        self.logger = logger
    }

    /// Starts one delivery task per receiver.
    public func start() {
        let tasks = receivers.map { receiver in
            Task { [post, retries, report, logger] in
                for await message in receiver.stream {
                    await Self.deliver(message, to: receiver, post: post, retries: retries, report: report, logger: logger)
                    if Task.isCancelled { break }
                }
                receiver.done.store(true, ordering: .releasing)
            }
        }
        workers.withLock { $0 = tasks }
    }

    /// Queues `event` for every receiver that chose it; returns at once.
    public func tell(_ event: EngineEvent, at: Instant) {
        let facts = facts.current
        for subscription in subscriptions where subscription.wants(event) {
            let body: Data
            switch subscription.format {
            case .json:
                body = HookBody(facts, event: Self.name(of: event), message: event.message, at: at, phase: event.phase,
                                step: event.step, hook: subscription.hook?.name, type: subscription.hook?.type.rawValue,
                                metadata: subscription.hook.flatMap { $0.metadata.isEmpty ? nil : $0.metadata },
                                evidence: event.evidence.isEmpty ? nil : event.evidence).json
            case .slack:
                body = Self.slack(facts, event: event, at: at)
            }
            enqueue(Message(id: nextID.add(1, ordering: .relaxed).newValue, event: Self.name(of: event), body: body,
                            journalIfDelivered: false), to: subscription.receiver)
        }
        let ended = (event.kind == .phaseChanged && event.phase == .promoted) || event.kind == .rollbackVerified
        if ended, !postRollout.isEmpty, !postRolloutSent.exchange(true, ordering: .relaxed) {
            for (receiver, hook) in postRollout {
                let body = HookBody(facts, event: hook.type.rawValue, message: event.message, at: at, phase: event.phase,
                                    hook: hook.name, type: hook.type.rawValue,
                                    metadata: hook.metadata.isEmpty ? nil : hook.metadata).json
                enqueue(Message(id: nextID.add(1, ordering: .relaxed).newValue, event: hook.type.rawValue, body: body,
                                journalIfDelivered: true), to: receiver)
            }
        }
    }

    /// The name a receiver sees: a phase entered, or the event's kind.
    static func name(of event: EngineEvent) -> String {
        if event.kind == .phaseChanged, let phase = event.phase { return phase.rawValue }
        return event.kind.rawValue
    }

    private func enqueue(_ message: Message, to receiver: Receiver) {
        receiver.pending.withLock { $0[message.id] = message }
        switch receiver.continuation.yield(message) {
        case .enqueued:
            break
        case .dropped(let oldest):
            // One line for the first drop, a count of the rest when the run ends (`finish`): a dead
            // receiver must not cost the coordinator a journal write per event.
            guard receiver.take(oldest.id) else { break }
            let first = receiver.droppedSinceReported.withLock { count in
                defer { count += 1 }
                return count == 0
            }
            if first {
                report(Delivery(receiver: receiver.label, event: oldest.event, delivered: false, attempts: 0,
                                detail: "its queue is full (the receiver is slow or down): the oldest message dropped",
                                journalIfDelivered: false))
            }
        case .terminated:
            if receiver.take(message.id) {
                report(Delivery(receiver: receiver.label, event: message.event, delivered: false, attempts: 0,
                                detail: "told after the run ended", journalIfDelivered: false))
            }
        @unknown default:
            break
        }
    }

    /// POSTs `message`, retrying with backoff while it is the only message waiting for this
    /// receiver; with a backlog, one attempt each, so that a dead receiver works through its queue
    /// (and the newest messages, a rollback's, are tried) instead of spending minutes on the first.
    static func deliver(_ message: Message, to receiver: Receiver, post: HookPost, retries: Retries,
                        report: @Sendable (Delivery) -> Void, logger: Logger) async {
        var backoff = retries.firstBackoff
        var last = ""
        var attempts = 0
        while true {
            attempts += 1
            let answer = await post.post(message.body, to: receiver.url, timeout: receiver.timeout, signer: receiver.signer)
            switch answer {
            case .accepted(let status):
                // Reported even when the run is ending: the receiver has it.
                if receiver.take(message.id) {
                    logger.debug("notification delivered", metadata: ["receiver": "\(receiver.label)", "event": "\(message.event)"])
                    report(Delivery(receiver: receiver.label, event: message.event, delivered: true, attempts: attempts,
                                    detail: "HTTP \(status)", journalIfDelivered: message.journalIfDelivered))
                }
                return
            case .refused(_, let detail), .noAnswer(let detail):
                last = detail
            }
            // The run ended: `finish` reports what is left, this one included.
            if Task.isCancelled { return }
            guard attempts < max(1, retries.attempts), receiver.backlog <= 1 else { break }
            do { try await Task.sleep(for: backoff) } catch { return }
            backoff = min(backoff * 2, retries.maxBackoff)
        }
        if receiver.take(message.id) {
            report(Delivery(receiver: receiver.label, event: message.event, delivered: false, attempts: attempts,
                            detail: last + " (\(attempts) attempt\(attempts == 1 ? "" : "s"))",
                            journalIfDelivered: message.journalIfDelivered))
        }
    }

    /// Ends the queues and waits at most `grace` for them to empty; then stops the workers
    /// (waiting a moment for a POST under way to end) and reports what is left as not delivered.
    /// The run's end waits little more than `grace`, however slow a receiver is.
    public func finish(grace: Duration) async {
        for receiver in receivers { receiver.continuation.finish() }
        let tasks = workers.withLock { $0 }
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline, receivers.contains(where: { $0.backlog > 0 }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for task in tasks { task.cancel() }
        // A cancelled transfer ends within about a second (libcurl's progress callback); a
        // message accepted meanwhile is reported delivered by its worker, not undelivered here.
        let stopBy = ContinuousClock.now + .milliseconds(500)
        while ContinuousClock.now < stopBy, receivers.contains(where: { !$0.done.load(ordering: .acquiring) }) {
            try? await Task.sleep(for: .milliseconds(10))
        }
        for receiver in receivers {
            let left = receiver.pending.withLock { pending in
                defer { pending = [:] }
                return pending.values.sorted { $0.id < $1.id }
            }
            for message in left {
                report(Delivery(receiver: receiver.label, event: message.event, delivered: false, attempts: 0,
                                detail: "the run ended first (waited \(formatDuration(grace)) for the receiver)",
                                journalIfDelivered: message.journalIfDelivered))
            }
            let dropped = receiver.droppedSinceReported.withLock { $0 }
            if dropped > 1 {
                report(Delivery(receiver: receiver.label, event: "(\(dropped - 1) more)", delivered: false, attempts: 0,
                                detail: "\(dropped - 1) more messages dropped after the first: its queue stayed full",
                                journalIfDelivered: false))
            }
        }
    }

    /// Slack's incoming-webhook JSON: a short `text` (what shows in a notification) and the
    /// facts as fields of a section block.
    static func slack(_ facts: RunFacts, event: EngineEvent, at: Instant) -> Data {
        let title = "switchover \(facts.from) → \(facts.to) (\(facts.policy), run \(facts.run)): \(name(of: event))"
        func field(_ name: String, _ value: String) -> [String: String] { ["type": "mrkdwn", "text": "*\(name)*\n\(value)"] }
        let payload: [String: Any] = [
            "text": "\(title): \(event.message)",
            "blocks": [
                ["type": "section", "text": ["type": "mrkdwn", "text": "*\(title)*\n\(event.message)"]],
                ["type": "section", "fields": [
                    field("Phase", (event.phase ?? facts.phase).rawValue),
                    field("Step", "\(event.step ?? facts.step)"),
                    field("Traffic to \(facts.to)", "\(formatNumber(facts.percent))%"),
                    field("At", at.iso8601),
                ]],
            ],
        ]
        return (try? JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    }
}
