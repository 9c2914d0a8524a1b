import Foundation
import SwitchoverCore
import SwitchoverStore

/// A moment marked on a chart: a gate evaluation, a pause, the rollback, the drain's start.
struct Marker {
    enum Kind: String { case gate, pause, resume, rollback, rollbackVerified, promoted, drain, drained, hardSignal, leader, outage }
    var t: Double
    var kind: Kind
    /// For gates: the verdict's raw value.
    var verdict: String?
    var label: String
    var detail: String
}

/// What the report derives from the journal: the outcome for the header, the series and marks
/// for the charts. Pure, so its rules (which gate rolled back, how long the rollback took) are
/// tested apart from the HTML.
struct Analysis {
    var data: ReportData
    var start: Instant
    var end: Instant
    var engineEvents: [(at: Instant, event: EngineEvent)]
    var phase: String
    var outcomeTitle: String
    var outcomeDetail: String
    var outcomeClass: String
    var stepsReached: Int
    var markers: [Marker]
    var drainStart: Instant?
    var drainedAt: Instant?
    /// Seconds since start.
    var holdWindow: (from: Double, to: Double, complete: Bool)?
    var dnsTTLEnds: Double?
    var weightZeroAt: Instant?

    var span: Double { max(1, (end - start).secondsValue) }
    func rel(_ instant: Instant) -> Double { (instant - start).secondsValue }

    init(_ data: ReportData) {
        self.data = data
        start = data.run.startedAt
        var last = data.run.startedAt
        for event in data.events { last = max(last, event.at) }
        for samples in data.samples.values { if let at = samples.last?.at { last = max(last, at) } }
        for evaluation in data.gateEvaluations { last = max(last, evaluation.at) }
        if let at = data.finalStateAt { last = max(last, at) }
        end = last
        engineEvents = data.events.compactMap { event in
            guard EngineEvent.Kind(rawValue: event.kind) != nil,
                  let decoded = try? JSONDecoder().decode(EngineEvent.self, from: Data(event.detail.utf8))
            else { return nil }
            return (event.at, decoded)
        }

        // The phase: the engine's last state, else the last phase change journaled.
        let lastChange = engineEvents.last { $0.event.kind == .phaseChanged }?.event
        phase = data.finalState?.phase.rawValue ?? lastChange?.evidence["to"] ?? lastChange?.phase?.rawValue ?? "pending"
        stepsReached = max(data.finalState?.step ?? 0,
                           engineEvents.filter { $0.event.kind == .stepVerified }.compactMap(\.event.step).max() ?? 0)
        if phase == Phase.rolledBack.rawValue || phase == Phase.aborted.rawValue {
            // After a rollback the state's step is 0: the furthest step verified is what was reached.
            stepsReached = engineEvents.filter { $0.event.kind == .stepVerified }.compactMap(\.event.step).max() ?? 0
        }

        let rollback = engineEvents.last { $0.event.kind == .rollbackStarted }
        let rollbackDone = engineEvents.last { $0.event.kind == .rollbackVerified }
        let promoted = engineEvents.first { $0.event.kind == .phaseChanged && $0.event.evidence["to"] == Phase.promoted.rawValue }
        let draining = engineEvents.first { $0.event.kind == .phaseChanged && $0.event.evidence["to"] == Phase.draining.rawValue }
        let drained = engineEvents.last { $0.event.kind == .drained }
        drainStart = data.finalState?.drain?.startedAt ?? draining?.at
        drainedAt = drained?.at
        var title = phase
        var detail = ""
        var cls = "neutral"
        let rel = { (instant: Instant) in clock((instant - data.run.startedAt).secondsValue) }
        switch Phase(rawValue: phase) {
        case .promoted?:
            title = "promoted"; cls = "good"
            detail = "all traffic on \(data.run.to)" + (promoted.map { " since \(rel($0.at))" } ?? "")
        case .draining?:
            title = "promoted, draining"; cls = "good"
            detail = "\(data.run.from) draining" + (drainStart.map { " since \(rel($0))" } ?? "")
        case .drained?:
            title = "drained"; cls = "good"
            detail = "\(data.run.from) drained" + (drainedAt.map { " at \(rel($0))" } ?? "") + "; it may be torn down"
        case .decommissioned?:
            title = "decommissioned"; cls = "good"
            let forced = engineEvents.last { $0.event.kind == .decommissioned }?.event.evidence["forced"] == "true"
            detail = forced ? "\(data.run.from) decommissioned before drained (forced)" : "\(data.run.from) drained and decommissioned"
        case .rolledBack?:
            title = "rolled back"; cls = "bad"
            if let rollback {
                // The engine's message usually names the gate already ("gate X failed 2 times").
                let message = rollback.event.message
                let gate = rollback.event.gate.flatMap { message.contains($0) ? nil : "gate \($0): " } ?? ""
                detail = "at \(rel(rollback.at)): \(gate)\(message)"
                if let rollbackDone, rollbackDone.at >= rollback.at {
                    detail += "; all traffic back on \(data.run.from) \(spoken(rollbackDone.at - rollback.at)) later"
                } else {
                    detail += "; the rollback's weights were not verified"
                }
            }
        case .aborted?:
            title = "aborted"; cls = "bad"
            detail = data.finalState?.reason ?? lastChange?.message ?? ""
        case .paused?:
            title = "paused"; cls = "warn"
            detail = data.finalState?.reason ?? ""
        case .shifting?, .preflight?, .pending?:
            title = "in progress (\(phase))"; cls = "warn"
        case nil:
            break
        }
        outcomeTitle = title
        outcomeDetail = detail
        outcomeClass = cls

        // Markers.
        var markers: [Marker] = []
        let t = { (instant: Instant) in (instant - data.run.startedAt).secondsValue }
        for evaluation in data.gateEvaluations {
            markers.append(Marker(t: t(evaluation.at), kind: .gate, verdict: evaluation.outcome.verdict.rawValue,
                                  label: evaluation.gate,
                                  detail: "step \(evaluation.step) · \(evaluation.gate): \(evaluation.outcome.verdict.rawValue) · \(evaluation.outcome.detail)"))
        }
        // A `resumed` is marked only where it ends a pause: a coordinator restarted on a run
        // that was never paused (the demo's `switchover drain` after a run that drained
        // already) journals one too, and a lone "resumed" line puzzles the reader.
        var paused = false
        for (at, event) in engineEvents {
            switch event.kind {
            case .paused:
                paused = true
                markers.append(Marker(t: t(at), kind: .pause, label: "paused", detail: event.message))
            case .resumed:
                guard paused else { break }
                paused = false
                markers.append(Marker(t: t(at), kind: .resume, label: "resumed", detail: event.message))
            case .rollbackStarted:
                markers.append(Marker(t: t(at), kind: .rollback, label: "rollback", detail: event.message))
            case .rollbackVerified:
                markers.append(Marker(t: t(at), kind: .rollbackVerified, label: "back on \(data.run.from)", detail: event.message))
            case .hardSignal: markers.append(Marker(t: t(at), kind: .hardSignal, label: "hard signal", detail: event.message))
            case .drained: markers.append(Marker(t: t(at), kind: .drained, label: "drained", detail: event.message))
            default: break
            }
        }
        // The runtime's own milestones: another coordinator taking the lease over (a standby, with
        // the journal in etcd), and the journal out of reach (the run held still meanwhile).
        for event in data.events {
            let message = (try? JSONDecoder().decode([String: String].self, from: Data(event.detail.utf8)))?["message"] ?? event.detail
            switch event.kind {
            case "leaderChanged": markers.append(Marker(t: t(event.at), kind: .leader, label: "leader changed", detail: message))
            case "journalUnavailable": markers.append(Marker(t: t(event.at), kind: .outage, label: "journal back", detail: message))
            default: break
            }
        }
        if let promoted { markers.append(Marker(t: t(promoted.at), kind: .promoted, label: "promoted", detail: promoted.event.message)) }
        if let drainStart { markers.append(Marker(t: t(drainStart), kind: .drain, label: "drain starts", detail: "\(data.run.from) put in drain")) }
        self.markers = markers.sorted { $0.t < $1.t }

        // The hold window: the last `drained` event says how long FROM had been idle; while
        // not drained, the engine's state says since when it is idle.
        holdWindow = nil
        if let drained, let held = drained.event.evidence["holdMilliseconds"]?.split(separator: "/").first,
           let ms = Double(held) {
            holdWindow = (t(drained.at) - ms / 1000, t(drained.at), true)
        } else if let drain = data.finalState?.drain, let idle = drain.idleSince {
            // The hold counts from the end of the DNS wait at the earliest (`DrainDetector.holdStart`).
            let ttl = max(data.policy?.dnsTTL ?? .zero, drain.recordTTL ?? .zero)
            let start = drain.weightZeroSince.map { max(idle, $0 + ttl) } ?? idle
            // Still within the TTL at the end: the hold has not begun, and there is no window.
            if start < end { holdWindow = (t(start), t(end), false) }
        }
        // FROM's weight read back as 0: the engine's state knows; else the first sample after the
        // drain began (or after promotion) showing it.
        weightZeroAt = data.finalState?.drain?.weightZeroSince
        if weightZeroAt == nil, let from = promoted?.at ?? drainStart {
            weightZeroAt = data.samples[data.run.from]?.first { $0.at >= from && $0.counters.weight == 0 }?.at
        }
        // The drain's DNS wait: the policy's dnsTTL, or the record TTL Route53 read back when
        // longer (what the detector waited).
        if let zero = weightZeroAt, let ttl = [data.policy?.dnsTTL, data.finalState?.drain?.recordTTL].compactMap({ $0 }).max() {
            dnsTTLEnds = t(zero + ttl)
        }
    }

    /// Weight share (0–100) of `cluster` at each sample where the clusters' weights sum above 0,
    /// merged with every weight change the run read back (its `result` rows). The read-backs
    /// matter on a real run: a step that lasts less than one sampling period (the step a hard
    /// signal rolls back within 200 ms) or the rollback at the run's very end would otherwise
    /// never show on the weight line.
    func weightSeries(_ cluster: String) -> [Point] {
        let mine = data.samples[cluster] ?? []
        let other = data.samples[cluster == data.run.from ? data.run.to : data.run.from] ?? []
        var otherByTime: [Int64: Int] = [:]
        for sample in other { otherByTime[sample.at.millisecondsSinceEpoch] = sample.counters.weight }
        var points = mine.compactMap { sample -> Point? in
            let total = sample.counters.weight + (otherByTime[sample.at.millisecondsSinceEpoch] ?? 0)
            guard total > 0 else { return nil }
            return Point(t: rel(sample.at), v: 100 * Double(sample.counters.weight) / Double(total))
        }
        guard data.run.from != data.run.to else { return points }
        for (at, percentToTarget) in readBacks {
            points.append(Point(t: rel(at), v: cluster == data.run.to ? percentToTarget : 100 - percentToTarget))
        }
        // Stable: at equal times the sample (journaled first) comes before the read-back.
        return points.enumerated().sorted { ($0.element.t, $0.offset) < ($1.element.t, $1.offset) }.map(\.element)
    }

    /// `service`'s share to TO (0–100) at each sample where its weights sum above 0.
    func serviceWeightSeries(_ service: String) -> [Point] {
        let to = data.samples[LoadBalancerSample.seriesKey(service: service, cluster: data.run.to)] ?? []
        let from = data.samples[LoadBalancerSample.seriesKey(service: service, cluster: data.run.from)] ?? []
        var fromByTime: [Int64: Int] = [:]
        for sample in from { fromByTime[sample.at.millisecondsSinceEpoch] = sample.counters.weight }
        return to.compactMap { sample in
            let total = sample.counters.weight + (fromByTime[sample.at.millisecondsSinceEpoch] ?? 0)
            guard total > 0 else { return nil }
            return Point(t: rel(sample.at), v: 100 * Double(sample.counters.weight) / Double(total))
        }
    }

    /// The share to TO of every successful weights read-back (`result` rows with a
    /// `percentToTarget`), oldest first.
    var readBacks: [(at: Instant, percentToTarget: Double)] {
        data.events.compactMap { event in
            guard event.kind == "result", event.ok != false,
                  let object = (try? JSONSerialization.jsonObject(with: Data(event.detail.utf8))) as? [String: Any],
                  let percent = (object["percentToTarget"] as? NSNumber)?.doubleValue else { return nil }
            return (event.at, percent)
        }
    }
}
