import Foundation

/// The cutover as a pure state machine: `next(state, input, now) -> (state, [Action])`.
///
/// No I/O and no clock: the runtime passes the time with every input, performs the returned
/// actions (journaling each intent before and its result after), and feeds what came back as
/// the next input. Deterministic tests drive it with a manual clock.
///
/// The rules, in one place:
/// - A step's bake starts when its weights read back verified, not when they were asked for.
///   It advances when the bake has passed, every gate has had at least one `pass` since the
///   bake began, and no gate has reached `failureThreshold` failures. Gates still without a pass
///   hold the step, and so does a gate whose latest evaluation failed; gates without a pass
///   whose latest outcome is `inconclusive` are named in
///   `CutoverState.heldByInconclusiveGates` (and journaled as `gateHeld` when the set changes).
/// - `failureThreshold` failures of one gate within a step: rollback (to 0% to TO) when
///   `rollback.automatic`, otherwise pause.
/// - `error` outcomes never count as failures (nor as passes); `pauseAfterErrors` of them in a
///   row from one gate pauses the run, saying which gate and why.
/// - The hard signal is checked on every load-balancer sample, not at the gate interval: TO's
///   5xx ratio over the window between the last two samples, with at least `minRequests`
///   responses, above `max5xxRatio` rolls back at once. It is configured explicitly, so it
///   applies even when `rollback.automatic` is false.
/// - `loadBalancer` gates are judged here, at every interval, over the samples since their
///   previous evaluation; other gates are asked of the runtime with `evaluateGates`.
/// - After `promoted`, the next tick starts the drain (`setDrain(FROM)`); the drain detector
///   moves the run to `drained`. Rollback stays possible until `decommissioned`; after it no
///   action ever sends traffic to FROM.
/// - Gates are evaluated only while `shifting` (including the bake after a manual promote):
///   ticks do nothing in `paused`, and results arriving then are stale. The hard signal is
///   checked on samples in `shifting` and `paused`, so it alone can roll back a paused run.
///   Once `promoted`, only a person rolls back.
/// - A rollback is verified only when all of it is in place: TO's weights read back at 0 and,
///   when FROM had been put in drain, FROM ready again. The runtime reports a failed
///   `setReady(FROM)` as a mismatch of the rollback's weights intent; every retry (tick,
///   `recover`, a repeated `rollback` command) sends `setReady(FROM)` again before the weights.
/// - Every reading of the live weights (`.liveWeights`) is compared with the journal after the
///   first weight moved. Weights a restarted load balancer forgot are written again at once;
///   weights changed on the same instance are someone's decision and never overridden: a
///   shifting run pauses, later phases report it (see `liveWeights`).
/// - `decommission` is decided on a fresh reading of FROM (see `freshness`); on an older one it
///   is refused unless forced.
/// - A command that makes no sense in the current phase is acknowledged as refused, with why,
///   and changes nothing.
/// - Webhooks (Flagger's types): before a step's weights are written, its confirmation hooks
///   (`confirm-rollout` before the first, `confirm-traffic-increase` before every one,
///   `confirm-promotion` before the last) are asked every `interval` until each answered 2xx;
///   the step's gates go on being evaluated meanwhile (a failure still rolls back). Before the
///   first step, after them, the `pre-rollout` hooks are asked once: any other answer aborts the
///   run with no traffic moved. `rollback` hooks are asked every `interval` while shifting or
///   paused: a 2xx answer rolls back at once. `rollout` hooks are gates. A person's `promote`
///   skips a confirmation wait; `rollback` and `abort` end it.
///
/// How the runtime drives it (one loop, one input at a time):
/// 1. On start: a fresh run begins from `CutoverState.initial`; a resumed one loads the journaled
///    state and calls `recover(_:now:)` instead of `next` for its first actions.
/// 2. Every `policy.sampling`: read the load balancer's stats, feed `.loadBalancerSample`, then
///    `.tick`. Poll the journal's pending commands and feed each as `.command(_, id:)`.
/// 3. For each returned action: journal `record` events (and `gateEvaluated` ones as gate
///    evaluations); for `setWeights`, `setDrain`, `setReady`, `forceCloseSessions` write the
///    intent and the new state snapshot in one transaction, perform, read back, write the
///    result, and feed `.weightsApplied(intent:result:)` for weights; run `evaluateGates`
///    concurrently and feed `.gateResults` when done; answer `runPreflight` with `.preflight`;
///    write `acknowledge` to the command row.
/// 4. Exit when the phase is final, or `promoted`/`drained` when the command asked only for that.
public struct CutoverEngine: Sendable {
    public let from: String
    public let to: String
    public let policy: Policy
    public let drainDetector: DrainDetector
    /// The steps across waves: which service is at which percentage at each step.
    public let schedule: StepSchedule

    public init(policy: Policy, from: String, to: String) {
        precondition(!policy.steps.isEmpty, "a policy has at least one step")
        self.policy = policy
        self.from = from
        self.to = to
        schedule = StepSchedule(policy: policy)
        drainDetector = DrainDetector(spec: policy.drain, freshness: Self.freshness(sampling: policy.sampling))
    }

    /// The percentage to TO at 1-based step `step` (0 before the first); with waves, the mean
    /// over services (`StepSchedule.percent`).
    public func percent(atStep step: Int) -> Double {
        schedule.percent(atStep: step)
    }

    /// Steps across every wave: the last one has every service at 100%.
    public var lastStep: Int { schedule.count }

    /// The `loadBalancer` gates that judge step `step`: a gate naming a service whose TO takes
    /// no traffic yet (a later wave) waits for that wave.
    private func gatesApplying(atStep step: Int) -> [Gate] {
        guard !schedule.services.isEmpty else { return policy.gates }
        let moving = Set(schedule.moving(atStep: step))
        return policy.gates.filter { gate in
            guard case .loadBalancer(let spec) = gate.source, let service = spec.service else { return true }
            return moving.contains(service)
        }
    }

    private var externalGates: [String] {
        policy.gates.compactMap { gate in
            if case .loadBalancer = gate.source { return nil }
            return gate.name
        }
    }

    // MARK: - The transition function

    /// One input in, the new state and the actions to perform out.
    public func next(_ state: CutoverState, _ input: EngineInput, now: Instant) -> (CutoverState, [Action]) {
        var t = Transition(state: state)
        switch input {
        case .tick:
            tick(&t, now: now)
        case .preflight(let result):
            preflight(&t, result, now: now)
        case .loadBalancerSample(let sample):
            loadBalancerSample(&t, sample, now: now)
        case .gateResults(let evaluation, let results):
            gateResults(&t, evaluation: evaluation, results: results, now: now)
        case .weightsApplied(let intent, let result):
            weightsApplied(&t, intent: intent, result: result, now: now)
        case .command(let command, let id):
            self.command(&t, command, id: id, now: now)
        case .journaledCommand(let command, let id, let issuedAt, let since):
            if issuedAt < since {
                // A person who typed `rollback` an hour ago while nothing listened must not have
                // it happen now by surprise.
                let why = "issued while no coordinator was running; not carried out"
                t.record(.init(.commandRefused, "\(command.name) refused: \(why)", phase: t.state.phase))
                t.actions.append(.acknowledge(commandID: id, accepted: false, detail: why))
            } else {
                self.command(&t, command, id: id, now: now)
            }
        case .drainSample(let sample):
            drainSample(&t, sample, now: now)
        case .liveWeights(let reading):
            liveWeights(&t, reading, now: now)
        }
        return (t.state, t.actions)
    }

    /// After the coordinator restarted from a journaled state: the actions that put the world
    /// back where the state says it is. Never advances anything.
    ///
    /// - A `setWeights` that was sent but not read back is re-emitted with the same intent
    ///   number: it is the journal's unfinished intent, to be re-applied exactly once.
    /// - A step that was baking re-applies its own weights (verifying the live ones) and its
    ///   bake restarts when they read back: time the coordinator was down was not watched, so it
    ///   does not count.
    /// - An unverified rollback is sent again.
    /// - Past promotion, `live` (a reading taken just before) is compared with the journal as every
    ///   reading is (see `liveWeights`): weights a restarted load balancer forgot are written
    ///   again before FROM is put back in drain; without a reading, a drain re-asserts
    ///   `setDrain(FROM)` (the runtime checks FROM's live weight right before it drains).
    public func recover(_ state: CutoverState, live: LiveWeightsReading? = nil, now: Instant) -> (CutoverState, [Action]) {
        var t = Transition(state: state)
        // Hook calls in flight died with the coordinator: asked again at the next tick.
        t.state.hookWait?.evaluation = nil
        t.state.hookWait?.askedAt = nil
        t.state.rollbackPoll = nil
        if let pending = state.pendingWeights {
            if pending.purpose == .rollback, fromWasDrained(state) { t.actions.append(.setReady(cluster: from)) }
            t.actions.append(.setWeights(intent: pending.intent, percentToTarget: pending.percentToTarget,
                                         step: pending.step, purpose: pending.purpose))
            t.record(.init(.resumed, "resumed with an unfinished weight change (intent \(pending.intent))",
                           phase: state.phase, step: state.step))
            return (t.state, t.actions)
        }
        switch state.phase {
        case .pending, .preflight:
            t.state.phase = .pending
            tick(&t, now: now)
        case .shifting where state.step == 0:
            // Waiting for hooks before the first step: no weight was written, none is now.
            t.record(.init(.resumed, "resumed before the first step; asking its hooks again", phase: .shifting, step: 0))
            if t.state.hookWait == nil { startFirstStep(&t, now: now) }
        case .shifting:
            t.record(.init(.resumed, "resumed at step \(state.step); the bake restarts once its weights read back",
                           phase: .shifting, step: state.step))
            if let live { t.state.loadBalancer = live.instance }
            reapplyCurrentStep(&t, now: now)
        case .rolledBack where !state.rollbackVerified:
            t.record(.init(.resumed, "resumed during a rollback; sending it again", phase: .rolledBack))
            resendRollback(&t, now: now)
        case .paused, .promoted:
            if let live { liveWeights(&t, live, now: now) }
        case .draining, .drained:
            t.record(.init(.resumed, "resumed while draining", phase: state.phase))
            if let live {
                liveWeights(&t, live, now: now)
            } else {
                t.actions.append(.setDrain(cluster: from))
            }
        default:
            break
        }
        return (t.state, t.actions)
    }

    // MARK: - Inputs

    private func tick(_ t: inout Transition, now: Instant) {
        switch t.state.phase {
        case .pending:
            t.changePhase(to: .preflight, reason: "preflight")
            t.actions.append(.runPreflight)
        case .shifting:
            pollRollbackHooks(&t, now: now)
            guard t.state.phase == .shifting else { return }
            evaluateIfDue(&t, now: now)
            if t.state.phase == .shifting { askHooks(&t, now: now) }
            if t.state.phase == .shifting { advanceIfReady(&t, now: now) }
        case .promoted:
            // Weights being written again (the load balancer restarted): FROM is drained only
            // once they read back.
            guard t.state.pendingWeights == nil else { return }
            t.state.drain = drainDetector.start(at: now)
            t.changePhase(to: .draining, reason: "all traffic on \(to); draining \(from)")
            t.actions.append(.setDrain(cluster: from))
        case .draining, .drained:
            guard let drain = t.state.drain else { return }
            let (updated, events) = drainDetector.check(drain, now: now)
            applyDrain(&t, updated, events, now: now)
        case .rolledBack:
            if !t.state.rollbackVerified && t.state.pendingWeights == nil {
                resendRollback(&t, now: now)
            }
        case .paused:
            pollRollbackHooks(&t, now: now)
            guard t.state.phase == .paused else { return }
            // A load-balancer fault: its step's weights are written again until every instance
            // reads them back.
            guard let retry = t.state.weightsRetry, t.state.pendingWeights == nil,
                  now - retry.lastAttemptAt >= reassertEvery else { return }
            t.state.weightsRetry?.lastAttemptAt = now
            let purpose: WeightsPurpose = t.state.manuallyPromoted && t.state.step == lastStep ? .promote : .step
            sendWeights(&t, percent: percent(atStep: t.state.step), step: t.state.step, purpose: purpose, now: now)
        case .preflight, .decommissioned, .aborted:
            break
        }
    }

    private func preflight(_ t: inout Transition, _ result: PreflightResult, now: Instant) {
        guard t.state.phase == .preflight else {
            t.record(.init(.staleResult, "preflight result ignored in phase \(t.state.phase.rawValue)"))
            return
        }
        if result.passed {
            t.changePhase(to: .shifting, reason: "preflight passed")
            startFirstStep(&t, now: now)
        } else {
            let why = "preflight failed: " + result.failures.joined(separator: "; ")
            t.state.reason = why
            t.changePhase(to: .aborted, reason: why)
            t.actions.append(.notify(why))
        }
    }

    private func loadBalancerSample(_ t: inout Transition, _ sample: LoadBalancerSample, now: Instant) {
        let previous = t.state.lastSample
        // Several instances: summed per instance onto the previous sample (a restarted or
        // silent instance is neither a drop nor new traffic).
        let sample = sample.rebased(onto: previous)
        t.state.lastSample = sample
        // A step whose bake began before any sample arrived takes its gates' window from the first.
        if t.state.stepStartedAt != nil {
            for gate in policy.gates where t.state.gateWindowStart[gate.name] == nil {
                if case .loadBalancer = gate.source { t.state.gateWindowStart[gate.name] = sample }
            }
        }
        switch t.state.phase {
        case .shifting, .paused:
            guard let hard = policy.rollback.hardSignal, let previous, t.state.step > 0 else { return }
            // Each service that has moved is judged on its own: one failing service among
            // healthy ones would be diluted in the sum.
            let services: [String?] = schedule.services.isEmpty ? [nil] : schedule.moving(atStep: t.state.step)
            let breach = services.lazy.compactMap { service -> (String?, TrafficWindow, Double)? in
                guard let before = previous.counters(self.to, service: service), let after = sample.counters(self.to, service: service),
                      let window = TrafficWindow(from: before, at: previous.at, to: after, at: sample.at),
                      window.responses >= Int64(hard.minRequests), window.responses > 0,
                      let ratio = window.ratio5xx, ratio > hard.max5xxRatio else { return nil }
                return (service, window, ratio)
            }.first
            guard let (service, window, ratio) = breach else { return }
            let why = "hard signal: \(to)'s 5xx ratio\(service.map { " in service \($0)" } ?? "") \(LoadBalancerGate.format(ratio)) above "
                + "\(LoadBalancerGate.format(hard.max5xxRatio)) over \(window.responses) responses"
            t.record(.init(.hardSignal, why, phase: t.state.phase, step: t.state.step,
                           evidence: ["ratio5xx": "\(ratio)", "responses": "\(window.responses)",
                                      "responses5xx": "\(window.responses5xx)",
                                      "windowMilliseconds": "\(window.duration.milliseconds)"]
                               .merging(service.map { ["service": $0] } ?? [:]) { a, _ in a }))
            startRollback(&t, reason: why, gate: nil, now: now)
        case .draining, .drained:
            // A sample without every instance says nothing about the ones that did not answer.
            if sample.missing?.isEmpty ?? true, let counters = sample.clusters[from] {
                drainSample(&t, DrainSample(at: sample.at, counters: counters, recordTTL: sample.recordTTL), now: now)
            }
        default:
            break
        }
    }

    private func gateResults(_ t: inout Transition, evaluation: Int, results: [GateResult], now: Instant) {
        if let wait = t.state.hookWait, wait.evaluation == evaluation, t.state.phase == .shifting {
            return hookResults(&t, results, now: now)
        }
        if t.state.rollbackPoll == evaluation {
            return rollbackHookResults(&t, results, now: now)
        }
        let current = t.state.phase == .shifting && t.state.stepStartedAt != nil
            && evaluation > t.state.staleEvaluationsUpTo
        guard current else {
            for result in results {
                t.record(.init(.staleResult, "\(result.gate): result of evaluation \(evaluation) arrived after its step",
                               step: t.state.step, gate: result.gate, outcome: result.outcome))
            }
            return
        }
        for result in results { apply(&t, result) }
        reactToGates(&t, now: now)
        if t.state.phase == .shifting { advanceIfReady(&t, now: now) }
    }

    private func weightsApplied(_ t: inout Transition, intent: Int, result: WeightsReadBack, now: Instant) {
        guard let pending = t.state.pendingWeights, pending.intent == intent else {
            t.record(.init(.staleResult, "read-back of intent \(intent) is not the one awaited"))
            return
        }
        t.state.pendingWeights = nil
        switch result {
        case .verified(let percentToTarget):
            t.state.percentToTarget = percentToTarget
            t.state.appliedPercent = pending.percentToTarget
            t.state.appliedStep = pending.step
            if let retry = t.state.weightsRetry, pending.purpose == .step || pending.purpose == .promote {
                // The load balancer answers again with the step's weights on every instance.
                t.state.weightsRetry = nil
                t.state.phase = t.state.pausedFrom ?? .shifting
                t.state.pausedFrom = nil
                t.state.reason = nil
                t.record(.init(.resumed, "every load-balancer instance reads back step \(pending.step)'s weights again, "
                               + "\(format(now - retry.since)) after the load balancer failed; the bake restarts",
                               phase: t.state.phase, step: t.state.step, evidence: ["lastFailure": retry.detail]))
                t.record(.init(.phaseChanged, "paused → \(t.state.phase.rawValue)", phase: t.state.phase))
                t.actions.append(.notify("resumed: every load-balancer instance reads back step \(pending.step)'s weights"))
            }
            switch pending.purpose {
            case .reassert:
                t.record(.init(.weightsReasserted, "journaled weights written again and read back: \(formatNumber(percentToTarget))% to \(to)",
                               phase: t.state.phase, step: t.state.step, evidence: ["percentToTarget": "\(percentToTarget)"]))
                t.actions.append(.notify("weights written again after the load balancer restarted: \(formatNumber(percentToTarget))% to \(to), read back"))
                if drainStarted(t.state) { t.actions.append(.setDrain(cluster: from)) }
            case .rollback:
                t.state.rollbackVerified = true
                t.record(.init(.rollbackVerified, "all traffic back on \(from), read back from the load balancer",
                               phase: t.state.phase, evidence: ["percentToTarget": "\(percentToTarget)"]))
                t.actions.append(.notify("rolled back: all traffic on \(from)"))
            case .step, .promote:
                let share = schedule.hasWaves ? formatNumber(percentToTarget, decimals: 2) : "\(percentToTarget)"
                t.record(.init(.stepVerified, "step \(pending.step) weights read back: \(share)% to \(to)",
                               phase: t.state.phase, step: pending.step,
                               evidence: ["percentToTarget": "\(percentToTarget)"]))
                if t.state.phase == .shifting { beginBake(&t, now: now) }
            }
        case .mismatch(let detail):
            t.record(.init(.weightsMismatch, "weights not verified: \(detail)", phase: t.state.phase, step: pending.step))
            switch pending.purpose {
            case .rollback:
                // Retried on the next tick: getting traffic back to FROM is not optional.
                t.actions.append(.notify("rollback not verified yet (\(detail)); retrying"))
            case .reassert:
                // Retried on a later reading while the weights still differ.
                t.actions.append(.notify("writing the journaled weights again failed (\(detail)); retrying"))
            case .step, .promote:
                if t.state.phase == .shifting {
                    pauseForLoadBalancer(&t, reason: "weights for step \(pending.step) not verified: \(detail)", detail: detail, now: now)
                } else if t.state.weightsRetry != nil {
                    t.state.weightsRetry?.detail = detail
                }
            }
        }
    }

    private func drainSample(_ t: inout Transition, _ sample: DrainSample, now: Instant) {
        guard t.state.phase == .draining || t.state.phase == .drained, let drain = t.state.drain else { return }
        let (observed, events) = drainDetector.observe(drain, sample)
        var all = events
        var updated = observed
        // A record TTL read from the load balancer (Route53) is only known now: said once (and
        // again if it grows) when it and then the hold cannot fit in the drain's timeout.
        if let ttl = observed.recordTTL, ttl > (drain.recordTTL ?? .zero) {
            let wait = drainDetector.dnsTTL(of: observed)
            // A hold alone longer than the timeout is a drain meant to time out: nothing to say.
            if drainDetector.holdFor < drainDetector.timeout, wait + drainDetector.holdFor >= drainDetector.timeout {
                let why = "\(from)'s record TTL read from the load balancer is \(format(ttl)): the DNS wait (\(format(wait))) and then the hold "
                    + "(\(format(drainDetector.holdFor))) are not shorter than the drain's timeout (\(format(drainDetector.timeout))), so the drain will "
                    + "time out first (`switchover drain \(from)` tracks it on); lower the record's TTL ahead of a switchover, or raise drain.timeout"
                t.record(.init(.drainProgress, why, phase: t.state.phase,
                               evidence: ["recordTTLSeconds": "\(ttl.secondsValue)", "timeoutSeconds": "\(drainDetector.timeout.secondsValue)"]))
                t.actions.append(.notify(why))
            }
        }
        if now > sample.at {
            let (checked, more) = drainDetector.check(observed, now: now)
            updated = checked
            all += more
        }
        applyDrain(&t, updated, all, now: now)
    }

    // MARK: - Commands

    private func command(_ t: inout Transition, _ command: ManualCommand, id: Int64?, now: Instant) {
        let phase = t.state.phase
        func refuse(_ why: String, evidence: [String: String] = [:]) {
            t.record(.init(.commandRefused, "\(command.name) refused: \(why)", phase: phase, evidence: evidence))
            if let id { t.actions.append(.acknowledge(commandID: id, accepted: false, detail: why)) }
        }
        func accept(_ what: String, evidence: [String: String] = [:]) {
            t.record(.init(.commandAccepted, "\(command.name): \(what)", phase: phase, evidence: evidence))
            if let id { t.actions.append(.acknowledge(commandID: id, accepted: true, detail: what)) }
        }

        switch command {
        case .pause(let reason):
            guard phase == .shifting else { return refuse("only a shifting run can be paused (phase \(phase.rawValue))") }
            accept("paused")
            pause(&t, reason: "paused by command" + (reason.map { ": \($0)" } ?? ""))

        case .resume:
            guard phase == .paused else { return refuse("the run is not paused (phase \(phase.rawValue))") }
            accept("resumed at step \(t.state.step)")
            t.state.phase = t.state.pausedFrom ?? .shifting
            t.state.pausedFrom = nil
            t.state.reason = nil
            t.state.weightsRetry = nil
            t.record(.init(.resumed, "resumed at step \(t.state.step); the bake restarts once its weights read back",
                           phase: t.state.phase, step: t.state.step))
            t.record(.init(.phaseChanged, "paused → \(t.state.phase.rawValue)", phase: t.state.phase))
            if t.state.step == 0 && t.state.appliedPercent == nil {
                // Paused while the first step waited for its hooks: no weight to write again.
                if t.state.hookWait == nil {
                    startFirstStep(&t, now: now)
                } else {
                    t.state.hookWait?.askedAt = nil
                    askHooks(&t, now: now)
                }
            } else {
                reapplyCurrentStep(&t, now: now)
            }

        case .promote:
            guard phase == .shifting || phase == .paused else {
                return refuse("only a shifting or paused run can be promoted (phase \(phase.rawValue))")
            }
            let prePending = policy.webhooks(.preRollout).map(\.name)
            if t.state.step == 0, !prePending.isEmpty, t.state.preRolloutPassed != true {
                return refuse("the pre-rollout hooks (\(prePending.joined(separator: ", "))) have not passed yet; no traffic has moved")
            }
            let skipped = t.state.hookWait.map { "; skipping the wait for hooks \($0.waitingFor.joined(separator: ", "))" } ?? ""
            t.state.hookWait = nil
            accept("skipping to 100% to \(to); gates watched for one more bake" + skipped)
            if phase == .paused {
                t.state.pausedFrom = nil
                t.state.reason = nil
                t.state.weightsRetry = nil
                t.changePhase(to: .shifting, reason: "promoted by command")
            }
            t.state.manuallyPromoted = true
            t.state.step = lastStep
            t.state.stepStartedAt = nil
            sendWeights(&t, percent: 100, step: lastStep, purpose: .promote, now: now)

        case .abort(let reason):
            guard [.pending, .preflight, .shifting, .paused].contains(phase) else {
                return refuse(phase == .aborted ? "already aborted"
                              : "a \(phase.rawValue) run cannot be aborted; use rollback or decommission")
            }
            let why = "aborted by command" + (reason.map { ": \($0)" } ?? "") + "; weights left as they are"
            accept(why, evidence: ["percentToTarget": "\(t.state.percentToTarget)"])
            t.state.hookWait = nil
            t.state.pendingWeights = nil
            t.state.stepStartedAt = nil
            t.state.weightsRetry = nil
            t.state.reason = why
            t.changePhase(to: .aborted, reason: why)
            t.actions.append(.notify(why))

        case .rollback(let reason):
            switch phase {
            case .decommissioned:
                let when = t.state.decommissionedAt.map { " at \($0)" } ?? ""
                return refuse("\(from) was decommissioned\(when) and may be gone; start a new run to move traffic")
            case .rolledBack where t.state.rollbackVerified:
                return refuse("already rolled back")
            case .rolledBack:
                // Not verified yet (a read-back or `setReady` failed, or the process died): the
                // person asking again gets it sent again rather than a refusal.
                accept("rollback not verified yet; sending it again")
                resendRollback(&t, now: now)
            case .pending, .preflight:
                return refuse("no traffic has moved yet")
            case .shifting, .paused, .promoted, .draining, .drained, .aborted:
                let why = "rollback by command" + (reason.map { ": \($0)" } ?? "")
                accept("all traffic back to \(from)")
                startRollback(&t, reason: why, gate: nil, now: now)
            }

        case .decommission(let force, let reason):
            var evidence = drainEvidence(t.state, now: now)
            // A guard decides on fresh truth: a drained run whose last reading of FROM is old (the
            // load balancer stopped answering) is not known to be drained now.
            let stale = staleEvidence(t.state, now: now)
            if let stale { evidence["stale"] = stale }
            switch phase {
            case .decommissioned:
                return refuse("already decommissioned")
            case .drained where stale == nil:
                accept("\(from) drained; it may be torn down", evidence: evidence)
                decommission(&t, forced: false, reason: reason, evidence: evidence, now: now)
            case .promoted, .draining, .drained:
                let trimmed = reason?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                guard force, !trimmed.isEmpty else {
                    let why: String
                    if let stale, phase == .drained {
                        why = "no fresh evidence that \(from) is still drained: \(stale)"
                    } else {
                        let open = t.state.drain.map { drainDetector.whatIsMissing($0, now: now).joined(separator: "; ") }
                        why = "\(from) is not drained" + (open.map { ": \($0)" } ?? "")
                    }
                    return refuse(why + (force ? "; --force needs --reason" : ""), evidence: evidence)
                }
                accept("forced before drained: \(trimmed)", evidence: evidence)
                decommission(&t, forced: true, reason: trimmed, evidence: evidence, now: now)
            default:
                return refuse("\(from) still takes traffic in phase \(phase.rawValue); only a promoted run may decommission it",
                              evidence: evidence)
            }
        }
    }

    // MARK: - Steps and gates

    private func sendWeights(_ t: inout Transition, percent: Double, step: Int, purpose: WeightsPurpose, now: Instant) {
        t.state.lastIntent += 1
        let pending = PendingWeights(intent: t.state.lastIntent, percentToTarget: percent, step: step,
                                     purpose: purpose, issuedAt: now)
        t.state.pendingWeights = pending
        if (purpose == .step || purpose == .promote) && t.state.weightsRetry == nil {
            var evidence: [String: String] = [:]
            let wave = schedule.describe(step: step).map { " (\($0))" } ?? ""
            if !schedule.services.isEmpty {
                let percents = schedule.percents(atStep: step)
                evidence["services"] = schedule.services.map { "\($0)=\(formatNumber(percents[$0] ?? 0))" }.joined(separator: " ")
            }
            let share = schedule.hasWaves ? formatNumber(percent, decimals: 2) : "\(percent)"
            t.record(.init(.stepStarted, "step \(step) of \(lastStep): \(share)% to \(to)\(wave)",
                           phase: t.state.phase, step: step, evidence: evidence))
        }
        t.actions.append(.setWeights(intent: pending.intent, percentToTarget: percent, step: step, purpose: purpose))
    }

    private func reapplyCurrentStep(_ t: inout Transition, now: Instant) {
        t.state.stepStartedAt = nil
        let purpose: WeightsPurpose = t.state.manuallyPromoted && t.state.step == lastStep ? .promote : .step
        sendWeights(&t, percent: percent(atStep: t.state.step), step: t.state.step, purpose: purpose, now: now)
    }

    /// The step's weights are in place: its bake and its gates' evidence start now.
    private func beginBake(_ t: inout Transition, now: Instant) {
        t.state.stepStartedAt = now
        t.state.gates = Dictionary(uniqueKeysWithValues: gatesApplying(atStep: t.state.step).map { ($0.name, GateProgress()) })
        t.state.staleEvaluationsUpTo = t.state.lastEvaluation
        t.state.lastEvaluationAt = now
        t.state.heldReported = []
        t.state.gateWindowStart = [:]
        if let sample = t.state.lastSample {
            for gate in policy.gates {
                if case .loadBalancer = gate.source { t.state.gateWindowStart[gate.name] = sample }
            }
        }
    }

    private func evaluateIfDue(_ t: inout Transition, now: Instant) {
        guard t.state.pendingWeights == nil, let _ = t.state.stepStartedAt else { return }
        if let last = t.state.lastEvaluationAt, now < last + policy.interval { return }
        t.state.lastEvaluationAt = now
        let moving = schedule.moving(atStep: t.state.step)
        for gate in gatesApplying(atStep: t.state.step) {
            guard case .loadBalancer(let spec) = gate.source else { continue }
            let outcome: GateOutcome
            if let start = t.state.gateWindowStart[gate.name], let latest = t.state.lastSample {
                outcome = latest.at > start.at ? spec.judge(previous: start, current: latest, services: moving)
                    : .inconclusive("no new load-balancer sample since the last evaluation")
                t.state.gateWindowStart[gate.name] = latest
            } else {
                outcome = .inconclusive("no load-balancer sample yet")
            }
            apply(&t, GateResult(gate: gate.name, outcome: outcome))
        }
        let external = externalGates
        if !external.isEmpty {
            t.state.lastEvaluation += 1
            t.actions.append(.evaluateGates(evaluation: t.state.lastEvaluation, gates: external))
        }
        reactToGates(&t, now: now)
    }

    private func apply(_ t: inout Transition, _ result: GateResult) {
        var progress = t.state.gates[result.gate] ?? GateProgress()
        switch result.outcome.verdict {
        case .pass:
            progress.passes += 1
            progress.consecutiveErrors = 0
        case .fail:
            progress.failures += 1
            progress.consecutiveErrors = 0
        case .inconclusive:
            progress.consecutiveErrors = 0
        case .error:
            progress.consecutiveErrors += 1
        }
        progress.last = result.outcome
        t.state.gates[result.gate] = progress
        t.record(.init(.gateEvaluated, "\(result.gate): \(result.outcome.verdict.rawValue): \(result.outcome.detail)",
                       phase: t.state.phase, step: t.state.step, gate: result.gate, outcome: result.outcome))
    }

    /// Failures over the threshold roll back (or pause); errors in a row pause.
    private func reactToGates(_ t: inout Transition, now: Instant) {
        for name in t.state.gates.keys.sorted() {
            let progress = t.state.gates[name]!
            if progress.failures >= policy.failureThreshold {
                let why = "gate \(name) failed \(progress.failures) time(s) at step \(t.state.step)"
                    + (progress.last.map { ": \($0.detail)" } ?? "")
                if policy.rollback.automatic {
                    startRollback(&t, reason: why, gate: name, now: now)
                } else {
                    pause(&t, reason: why + " (automatic rollback is off)")
                }
                return
            }
        }
        for name in t.state.gates.keys.sorted() {
            let progress = t.state.gates[name]!
            if progress.consecutiveErrors >= policy.pauseAfterErrors {
                pause(&t, reason: "gate \(name) could not be evaluated \(progress.consecutiveErrors) times in a row"
                      + (progress.last.map { ": \($0.detail)" } ?? ""))
                return
            }
        }
    }

    private func advanceIfReady(_ t: inout Transition, now: Instant) {
        guard t.state.pendingWeights == nil, let started = t.state.stepStartedAt else { return }
        let promoting = t.state.manuallyPromoted && t.state.step == lastStep
        if !promoting {
            let held = t.state.heldByInconclusiveGates
            if held != t.state.heldReported {
                t.state.heldReported = held
                if !held.isEmpty {
                    t.record(.init(.gateHeld, "step \(t.state.step) held by inconclusive gates \(held.joined(separator: ", "))",
                                   phase: .shifting, step: t.state.step))
                }
            }
        }
        guard now >= started + policy.bake else { return }
        if !promoting && !t.state.gatesWithoutPass.isEmpty { return }
        // Stricter than the threshold alone: a gate whose latest evaluation failed waits for the
        // next one (a pass lets the step go, another failure may roll back).
        if t.state.gates.values.contains(where: { $0.last?.verdict == .fail }) { return }
        if t.state.step < lastStep, !hooksAllow(&t, step: t.state.step + 1, now: now) { return }
        t.record(.init(.stepCompleted, "step \(t.state.step) baked \(format(policy.bake)) with every gate passing",
                       phase: .shifting, step: t.state.step))
        if t.state.step >= lastStep {
            t.state.promotedAt = now
            t.state.stepStartedAt = nil
            t.changePhase(to: .promoted, reason: "100% to \(to), final bake passed")
            t.actions.append(.notify("promoted: all traffic on \(to)"))
        } else {
            t.state.step += 1
            t.state.stepStartedAt = nil
            sendWeights(&t, percent: percent(atStep: t.state.step), step: t.state.step, purpose: .step, now: now)
        }
    }

    /// Pauses because the load balancer failed, not green: never a rollback. The step's weights
    /// are retried every `reassertEvery` (see `tick`), and the bake resumes once they read back.
    private func pauseForLoadBalancer(_ t: inout Transition, reason: String, detail: String, now: Instant) {
        pause(&t, reason: reason + "; the load balancer failed, not \(to): no rollback; writing the step's weights again "
              + "every \(format(reassertEvery)) until every instance reads them back (or `switchover rollback`)")
        t.state.weightsRetry = WeightsRetry(since: now, lastAttemptAt: now, detail: detail)
    }

    private func pause(_ t: inout Transition, reason: String) {
        // A hook answer in flight belongs to the time before the pause: asked again on resume.
        t.state.hookWait?.evaluation = nil
        t.state.pausedFrom = t.state.phase
        t.state.reason = reason
        t.state.stepStartedAt = nil
        t.record(.init(.paused, reason, phase: .paused, step: t.state.step))
        t.changePhase(to: .paused, reason: reason)
        t.actions.append(.notify("paused: \(reason)"))
    }

    private func startRollback(_ t: inout Transition, reason: String, gate: String?, now: Instant) {
        let wasDraining = t.state.phase == .draining || t.state.phase == .drained
        t.record(.init(.rollbackStarted, reason, phase: .rolledBack, step: t.state.step, gate: gate,
                       evidence: ["fromPhase": t.state.phase.rawValue, "percentToTarget": "\(t.state.percentToTarget)"]))
        t.state.reason = reason
        t.state.stepStartedAt = nil
        t.state.pausedFrom = nil
        t.state.weightsRetry = nil
        t.state.hookWait = nil
        t.state.rollbackVerified = false
        t.changePhase(to: .rolledBack, reason: reason)
        if wasDraining { t.actions.append(.setReady(cluster: from)) }
        t.state.step = 0
        sendWeights(&t, percent: 0, step: 0, purpose: .rollback, now: now)
        t.actions.append(.notify("rolling back: \(reason)"))
    }

    /// An unverified rollback, sent again whole: FROM out of drain (when it had been put in
    /// drain) and then the weights.
    private func resendRollback(_ t: inout Transition, now: Instant) {
        if fromWasDrained(t.state) { t.actions.append(.setReady(cluster: from)) }
        sendWeights(&t, percent: 0, step: 0, purpose: .rollback, now: now)
    }

    /// True once the drain started (`setDrain(FROM)` was asked for): the drain state is set then
    /// and a rollback keeps it, so a rollback must also make FROM ready again.
    private func fromWasDrained(_ state: CutoverState) -> Bool {
        state.drain != nil
    }

    // MARK: - Webhooks

    /// Step 1, once its hooks allow it.
    private func startFirstStep(_ t: inout Transition, now: Instant) {
        guard hooksAllow(&t, step: 1, now: now) else { return }
        t.state.step = 1
        sendWeights(&t, percent: percent(atStep: 1), step: 1, purpose: .step, now: now)
    }

    /// The confirmation hooks the weights of step `target` wait for, in the policy's order.
    func confirmations(before target: Int) -> [String] {
        policy.webhooks.filter { hook in
            switch hook.type {
            case .confirmTrafficIncrease: true
            case .confirmRollout: target == 1
            case .confirmPromotion: target == lastStep
            default: false
            }
        }.map(\.name)
    }

    /// True when step `target`'s weights may be written now. Otherwise the step waits
    /// (`hookWait`): its hooks are asked now and every `interval` after (`askHooks`).
    private func hooksAllow(_ t: inout Transition, step target: Int, now: Instant) -> Bool {
        if let wait = t.state.hookWait, wait.step == target {
            guard wait.stage == .confirmed else { return false }
            t.state.hookWait = nil
            return true
        }
        let confirm = confirmations(before: target)
        let pre = target == 1 && t.state.preRolloutPassed != true ? policy.webhooks(.preRollout).map(\.name) : []
        if confirm.isEmpty && pre.isEmpty { return true }
        let wait = HookWait(step: target, stage: confirm.isEmpty ? .preRollout : .confirm,
                            waitingFor: confirm.isEmpty ? pre : confirm, since: now)
        t.state.hookWait = wait
        if wait.stage == .confirm {
            t.record(.init(.hookWaiting, "step \(target) waits for \(wait.waitingFor.joined(separator: ", ")) to answer 2xx",
                           phase: t.state.phase, step: t.state.step,
                           evidence: ["hooks": wait.waitingFor.joined(separator: ","), "beforeStep": "\(target)"]))
        }
        askHooks(&t, now: now)
        return false
    }

    /// Asks the waiting hooks when no answer is awaited and `interval` has passed since the last ask.
    private func askHooks(_ t: inout Transition, now: Instant) {
        guard var wait = t.state.hookWait, wait.evaluation == nil, wait.stage != .confirmed else { return }
        if let last = wait.askedAt, now < last + policy.interval { return }
        t.state.lastEvaluation += 1
        wait.evaluation = t.state.lastEvaluation
        wait.askedAt = now
        t.state.hookWait = wait
        t.actions.append(.evaluateGates(evaluation: t.state.lastEvaluation, gates: wait.waitingFor))
    }

    private func hookResults(_ t: inout Transition, _ results: [GateResult], now: Instant) {
        guard var wait = t.state.hookWait else { return }
        wait.evaluation = nil
        switch wait.stage {
        case .confirm:
            var changed = false
            for result in results {
                let answer = "\(result.outcome.verdict.rawValue): \(result.outcome.detail)"
                if wait.answers[result.gate] != answer { wait.answers[result.gate] = answer; changed = true }
            }
            let passed = Set(results.filter { $0.outcome.verdict == .pass }.map(\.gate))
            wait.waitingFor.removeAll { passed.contains($0) }
            let pre = policy.webhooks(.preRollout).map(\.name)
            if !wait.waitingFor.isEmpty {
                if changed {
                    let answers = wait.waitingFor.map { "\($0): \(wait.answers[$0] ?? "no answer yet")" }.joined(separator: "; ")
                    t.record(.init(.hookWaiting, "step \(wait.step) waits for \(wait.waitingFor.joined(separator: ", ")) (\(answers))",
                                   phase: t.state.phase, step: t.state.step,
                                   evidence: ["hooks": wait.waitingFor.joined(separator: ","), "beforeStep": "\(wait.step)"]))
                }
                t.state.hookWait = wait
                return
            }
            t.record(.init(.hookConfirmed, "step \(wait.step) confirmed: every confirmation hook answered 2xx after \(format(now - wait.since))",
                           phase: t.state.phase, step: t.state.step, evidence: ["beforeStep": "\(wait.step)"]))
            if wait.step == 1, t.state.preRolloutPassed != true, !pre.isEmpty {
                wait.stage = .preRollout
                wait.waitingFor = pre
                wait.askedAt = nil
                t.state.hookWait = wait
                askHooks(&t, now: now)
                return
            }
            wait.stage = .confirmed
        case .preRollout:
            if let refused = results.first(where: { $0.outcome.verdict != .pass }) {
                let why = "pre-rollout hook \(refused.gate) did not pass (\(refused.outcome.verdict.rawValue): \(refused.outcome.detail)); no traffic moved"
                t.record(.init(.hookRefused, why, phase: .aborted, step: 0, gate: refused.gate, outcome: refused.outcome))
                t.state.hookWait = nil
                t.state.reason = why
                t.changePhase(to: .aborted, reason: why)
                t.actions.append(.notify("aborted: \(why)"))
                return
            }
            t.state.preRolloutPassed = true
            t.record(.init(.hookConfirmed, "pre-rollout hooks passed: \(wait.waitingFor.joined(separator: ", "))",
                           phase: t.state.phase, step: 0, evidence: ["beforeStep": "1"]))
            wait.stage = .confirmed
        case .confirmed:
            break
        }
        t.state.hookWait = wait
        if t.state.step == 0 {
            startFirstStep(&t, now: now)
        } else {
            advanceIfReady(&t, now: now)
        }
    }

    /// Asks the `rollback` hooks every `interval` (one poll at a time).
    private func pollRollbackHooks(_ t: inout Transition, now: Instant) {
        let hooks = policy.webhooks(.rollback)
        guard !hooks.isEmpty, t.state.step > 0, t.state.rollbackPoll == nil else { return }
        if let last = t.state.rollbackPolledAt, now < last + policy.interval { return }
        t.state.lastEvaluation += 1
        t.state.rollbackPoll = t.state.lastEvaluation
        t.state.rollbackPolledAt = now
        t.actions.append(.evaluateGates(evaluation: t.state.lastEvaluation, gates: hooks.map(\.name)))
    }

    /// A rollback hook that answered 2xx asks for a rollback: done at once, like the command.
    private func rollbackHookResults(_ t: inout Transition, _ results: [GateResult], now: Instant) {
        t.state.rollbackPoll = nil
        guard t.state.phase == .shifting || t.state.phase == .paused,
              let asked = results.first(where: { $0.outcome.verdict == .pass }) else { return }
        let why = "rollback hook \(asked.gate) asked for a rollback (\(asked.outcome.detail))"
        t.record(.init(.hookRollback, why, phase: t.state.phase, step: t.state.step, gate: asked.gate, outcome: asked.outcome))
        startRollback(&t, reason: why, gate: asked.gate, now: now)
    }

    // MARK: - Live weights against the journal

    /// How often the journaled weights (or FROM's drain state) are written again while a reading
    /// still shows them lost.
    private var reassertEvery: Duration { max(.seconds(1), policy.sampling) }

    /// True once FROM was put in drain (the drain started) and the run is still draining.
    private func drainStarted(_ state: CutoverState) -> Bool {
        state.drain != nil && (state.phase == .draining || state.phase == .drained)
    }

    /// Compares a reading of the live weights with the journal, in every phase after the first
    /// weight moved (before it, and once final, there is nothing to compare):
    /// - the load balancer restarted (a new process, which forgot every runtime weight and drain
    ///   state): the journaled weights are written again at once, and FROM's drain state after
    ///   them; while shifting the step's bake restarts once they read back (as on resume);
    /// - the weights differ on the same instance: someone changed them, and they are not
    ///   overridden. A shifting run pauses saying so (`resume` writes the step's weights
    ///   again); a paused or promoted one reports it; a drain cannot end while FROM has weight;
    /// - only FROM's drain state is gone (weights as journaled): it is set again, which is safe
    ///   at weight 0 (the runtime reads the weights right before it drains).
    /// Each episode is journaled once (`weightsDrift`), and its end (`weightsAsJournaled`).
    private func liveWeights(_ t: inout Transition, _ reading: LiveWeightsReading, now: Instant) {
        let phase = t.state.phase
        guard [.shifting, .paused, .promoted, .draining, .drained].contains(phase) else {
            if !phase.isFinal { t.state.loadBalancer = reading.instance }
            return
        }
        // Before the first step's weights (waiting for its hooks) nothing was written: the live
        // weights are the preflight's, and there is nothing of the journal to hold them to.
        if t.state.step == 0, t.state.appliedPercent == nil, phase == .shifting || phase == .paused {
            t.state.loadBalancer = reading.instance
            return
        }
        // A weight change in flight: its own read-back decides.
        guard t.state.pendingWeights == nil else { return }
        // A load-balancer fault being retried: the retry writes the step's weights everywhere
        // (repairing a restarted instance too), and its read-back decides.
        if t.state.weightsRetry != nil {
            t.state.loadBalancer = reading.instance
            return
        }
        if phase == .shifting, !reading.unreachable.isEmpty {
            let what = reading.unreachable.joined(separator: "; ")
            pauseForLoadBalancer(&t, reason: "load-balancer instance not answering: \(what)", detail: what, now: now)
            return
        }
        let restarted = t.state.loadBalancer.map { reading.instance.isRestart(of: $0) } ?? false
        t.state.loadBalancer = reading.instance
        var differences: [String] = reading.unreachable.map { "not answering: \($0)" }
        if restarted { differences.append("the load balancer restarted (now \(reading.instance.id))") }
        let shareDiffers = abs(reading.percentToTarget - t.state.percentToTarget) > 1e-6
        if shareDiffers {
            differences.append("live weights send \(formatNumber(reading.percentToTarget))% to \(to) (weight \(reading.fromWeight) on \(from), "
                               + "\(reading.toWeight) on \(to)); the journal says \(formatNumber(t.state.percentToTarget))%")
        }
        differences += reading.drift
        let weightsDiffer = restarted || shareDiffers || !reading.drift.isEmpty
        let drainLost = drainStarted(t.state) && reading.fromInDrain == false
        if drainLost { differences.append("\(from)'s servers are not in drain") }

        guard !differences.isEmpty else {
            if let episode = t.state.drift {
                t.state.drift = nil
                t.record(.init(.weightsAsJournaled, "live weights are as journaled again (they differed for \(format(now - episode.since)))",
                               phase: phase, step: t.state.step))
            }
            return
        }
        let isNew = t.state.drift == nil
        var episode = t.state.drift ?? DriftEpisode(since: now, restarted: false, differences: [])
        episode.restarted = episode.restarted || restarted
        episode.differences = differences
        let due = episode.lastReassertAt.map { now - $0 >= reassertEvery } ?? true
        let what = differences.joined(separator: "; ")
        if isNew {
            t.record(.init(.weightsDrift, "live weights differ from the journal: \(what)", phase: phase, step: t.state.step,
                           evidence: ["restarted": "\(episode.restarted)", "livePercentToTarget": "\(reading.percentToTarget)",
                                      "journaledPercentToTarget": "\(t.state.percentToTarget)"]))
        }
        let repairWeights = weightsDiffer && episode.restarted
        if repairWeights || (drainLost && !weightsDiffer), due { episode.lastReassertAt = now }
        t.state.drift = episode

        switch phase {
        case .shifting:
            if repairWeights {
                if due {
                    t.actions.append(.notify("the load balancer restarted: writing step \(t.state.step)'s weights again; its bake restarts"))
                    reapplyCurrentStep(&t, now: now)
                }
            } else if weightsDiffer {
                pause(&t, reason: "live weights differ from those applied (changed on the load balancer, not by Switchover): \(what); "
                      + "`switchover resume` writes step \(t.state.step)'s weights again, `switchover rollback` moves all traffic back to \(from)")
            }
        case .paused, .promoted, .draining, .drained:
            if repairWeights {
                if due {
                    let request = journaledRequest(t.state)
                    sendWeights(&t, percent: request.percent, step: request.step, purpose: .reassert, now: now)
                }
            } else if weightsDiffer {
                if isNew {
                    t.actions.append(.notify("live weights differ from the journal and were changed on the same load balancer instance, "
                                             + "so they are left as they are: \(what)"))
                }
            } else if drainLost, due {
                t.actions.append(.setDrain(cluster: from))
            }
        default:
            break
        }
    }

    /// The percentage to TO the journaled weights were asked for: what `setWeights` must be
    /// given to write them again (the verified share is what they came to after translation).
    private func journaledRequest(_ state: CutoverState) -> (percent: Double, step: Int) {
        if let applied = state.appliedPercent {
            // Journals written before `appliedStep`: the step whose percentage it is.
            let step = state.appliedStep ?? (applied >= 100 ? lastStep : applied <= 0 ? 0 : state.step)
            return (applied, step)
        }
        if state.phase == .rolledBack { return (0, 0) }
        return [.promoted, .draining, .drained].contains(state.phase) ? (100, lastStep) : (percent(atStep: state.step), state.step)
    }

    // MARK: - Drain and decommission

    private func applyDrain(_ t: inout Transition, _ drain: DrainState, _ events: [DrainEvent], now: Instant) {
        t.state.drain = drain
        for event in events {
            switch event {
            case .becameDrained(let reason):
                t.record(.init(.drained, reason, phase: .drained, evidence: drainEvidence(t.state, now: now)))
                t.changePhase(to: .drained, reason: reason)
                t.actions.append(.notify("\(from) drained: \(reason)"))
                // `decommission.requireApproval: false`: no separate command; recorded as soon as
                // FROM is drained, on the same fresh sample and with the same evidence.
                if !policy.decommission.requireApproval {
                    let why = "decommission.requireApproval is false: recorded when \(from) drained"
                    decommission(&t, forced: false, reason: why, evidence: drainEvidence(t.state, now: now), now: now)
                    t.state.reason = why
                }
            case .activityAfterDrained(let reason):
                t.record(.init(.drainActivity, "\(from) no longer drained: \(reason)", phase: .draining,
                               evidence: drainEvidence(t.state, now: now)))
                t.changePhase(to: .draining, reason: reason)
            case .timedOut(let reason, _, _, _):
                t.record(.init(.drainTimedOut, reason, phase: t.state.phase, evidence: drainEvidence(t.state, now: now)))
                t.actions.append(.notify("drain of \(from) timed out: \(reason)"))
            case .forceClose(let active):
                t.record(.init(.forceClose, "shutting down \(active) sessions still open to \(from) (drain.forceAfter)",
                               phase: t.state.phase, evidence: drainEvidence(t.state, now: now)))
                t.actions.append(.forceCloseSessions(cluster: from))
            }
        }
    }

    private func decommission(_ t: inout Transition, forced: Bool, reason: String?, evidence: [String: String],
                              now: Instant) {
        var evidence = evidence
        evidence["forced"] = "\(forced)"
        if let reason { evidence["reason"] = reason }
        t.state.decommissionedAt = now
        t.state.reason = forced ? "forced: \(reason ?? "")" : nil
        t.record(.init(.decommissioned, forced ? "\(from) decommissioned before drained: \(reason ?? "")"
                                                : "\(from) decommissioned after drained",
                       phase: .decommissioned, evidence: evidence))
        t.changePhase(to: .decommissioned, reason: forced ? "forced" : "drained")
        t.actions.append(.notify("\(from) may be torn down"))
    }

    /// How old a reading may be for a guard to decide on it (drained, decommission): four
    /// sampling periods, and at least a second.
    public var freshness: Duration { Self.freshness(sampling: policy.sampling) }

    static func freshness(sampling: Duration) -> Duration { max(.seconds(1), sampling * 4) }

    /// Why the drain's last reading of FROM is too old to decide on, or nil when it is fresh.
    func staleEvidence(_ state: CutoverState, now: Instant) -> String? {
        guard let sample = state.drain?.lastSample else { return "no reading of \(from) since its drain began" }
        let age = now - sample.at
        guard age > freshness else { return nil }
        return "the last reading of \(from) is \(format(age)) old (at most \(format(freshness)) allowed): the load balancer has not answered since"
    }

    /// What is known about FROM now: open sessions, last request seen, live weight, the drain's
    /// status. Journaled with every decommission decision.
    public func drainEvidence(_ state: CutoverState, now: Instant) -> [String: String] {
        var evidence: [String: String] = ["phase": state.phase.rawValue]
        guard let drain = state.drain else {
            evidence["drain"] = "not started"
            return evidence
        }
        evidence["drainStatus"] = drain.status.rawValue
        evidence["drainReason"] = drain.reason
        if let sample = drain.lastSample {
            evidence["activeSessions"] = "\(sample.activeSessions)"
            evidence["liveWeight"] = "\(sample.weight)"
            evidence["sampledAt"] = "\(sample.at.millisecondsSinceEpoch)"
        }
        evidence["lastRequestSeenAt"] = drain.lastActivityAt.map { "\($0.millisecondsSinceEpoch)" } ?? "none seen"
        let hold = drainDetector.holdProgress(drain, now: now)
        evidence["holdMilliseconds"] = "\(hold.heldMilliseconds)/\(hold.holdForMilliseconds)"
        return evidence
    }

    /// The drain's ETA, for `status` and the progress line; `unknown` outside a drain.
    public func drainETA(_ state: CutoverState, now: Instant) -> DrainETA {
        guard let drain = state.drain else { return .unknown(why: "no drain under way") }
        return drainDetector.eta(drain, now: now)
    }

    /// Time left in the current step's bake, for the progress line; nil when no bake runs (weights
    /// not yet verified, paused, finished).
    public func bakeRemaining(_ state: CutoverState, now: Instant) -> Duration? {
        guard state.phase == .shifting, let started = state.stepStartedAt else { return nil }
        let left = (started + policy.bake) - now
        return left < .zero ? .zero : left
    }

    /// The drain's hold progress, for `status` and the progress line.
    public func holdProgress(_ state: CutoverState, now: Instant) -> HoldProgress? {
        state.drain.map { drainDetector.holdProgress($0, now: now) }
    }
}

/// The state being built by one transition and the actions it has produced so far.
private struct Transition {
    var state: CutoverState
    var actions: [Action] = []

    mutating func record(_ event: EngineEvent) {
        actions.append(.record(event))
    }

    mutating func changePhase(to phase: Phase, reason: String) {
        let old = state.phase
        guard old != phase else { return }
        state.phase = phase
        record(EngineEvent(.phaseChanged, "\(old.rawValue) → \(phase.rawValue): \(reason)", phase: phase,
                           step: state.step, evidence: ["from": old.rawValue, "to": phase.rawValue]))
    }
}
