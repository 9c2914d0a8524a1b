import ArgumentParser
import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverRuntime
import SwitchoverStore

/// `switchover decommission FROM`: records, in the journal, that FROM may be torn down. The
/// engine decides (the same rule with or without a coordinator): accepted when the run is
/// `drained`; refused otherwise, with the evidence; `--force --reason` overrides and journals
/// both the reason and the evidence at that moment. With a coordinator running it goes through
/// the journal like `pause`; with none, this process takes the lock, takes a fresh sample of the
/// load balancer (the evidence is FROM now, not when the last coordinator stopped), and carries
/// it out itself, as `rollback` does. After it the run is final: `rollback` refuses, and nothing
/// in Switchover sends traffic to FROM again without a new run.
struct Decommission: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record that FROM may be torn down; refuses unless drained.",
        discussion: """
            Refuses (exit 1) unless the latest run of FROM is drained, printing the evidence: \
            open sessions, last request seen, live weight. --force --reason TEXT records the \
            decommission anyway, with the reason and that evidence. Exit 0 recorded, 1 refused.
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The cluster that may be torn down.") var from: String
    @Flag(help: "Decommission even though FROM is not drained (needs --reason).") var force = false
    @Option(help: "Why, for the journal (required with --force).") var reason: String?

    func validate() throws {
        if force && (reason?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "").isEmpty {
            throw ValidationError("--force needs --reason TEXT: the journal keeps why FROM was torn down before it drained")
        }
    }

    func run() async throws {
        try await global.guardingJournal("decommission") { try await execute() }
    }

    func execute() async throws {
        let command = ManualCommand.decommission(force: force, reason: reason)
        guard let journal = try global.existingJournal(), let (run, _) = try global.latestRun(in: journal) else {
            refuseControl(command, "no run journaled at \(global.state)", global: global)
        }
        guard run.from == from else {
            refuseControl(command, "the latest run (\(run.id)) moved traffic from \(run.from) to \(run.to), not from \(from)",
                          global: global)
        }
        let (configuration, _) = global.loadConfiguration()
        let policy = configuration.policy(named: run.policy)

        if CoordinatorLock.isHeld(statePath: global.state) {
            return try await submit(command, journal: journal, run: run, policy: policy)
        }
        let lock: CoordinatorLock
        do {
            lock = try CoordinatorLock(statePath: global.state)
        } catch let error as StoreError where error.code == .lockHeld {
            return try await submit(command, journal: journal, run: run, policy: policy)
        }
        defer { lock.release() }

        let logger = bootstrapLogging()
        let (_, fromCluster, toCluster, chosen) = try global.requirePair(from: run.from, to: run.to, policy: run.policy)
        let router: any WeightRouter, observer: any TrafficObserver
        do {
            (router, observer) = try DriverRegistry.standard.make(policy: chosen, from: fromCluster, to: toCluster, logger: logger)
        } catch {
            refuseControl(command, "cannot make the load balancer's driver: \(error)", global: global)
        }
        let (name, arguments) = CommandCodec.encode(command)
        let id = try journal.submitCommand(name, arguments: arguments, at: now())
        guard let (_, state) = try global.latestRun(in: journal) else {
            refuseControl(command, "no run journaled", id: id, global: global)
        }
        let coordinator = Coordinator(engine: CutoverEngine(policy: chosen, from: run.from, to: run.to), runID: run.id,
                                      journal: journal, router: router, observer: observer, sources: [:], state: state,
                                      unfinishedIntents: try journal.unfinishedIntents(run: run.id),
                                      reporter: LogReporter(logger: logger), logger: logger)
        let final = try await coordinator.runOffline(command, id: id)
        guard let reader = try global.existingJournal(), let record = try reader.command(id) else {
            refuseControl(command, "the command was not journaled", id: id, global: global)
        }
        answer(record, id: id, state: final, policy: chosen, offline: true)
    }

    /// Asks the running coordinator, then answers with the state it journaled (or, when it did
    /// not answer in time, withdraws the command: see `awaitAcknowledgement`).
    func submit(_ command: ManualCommand, journal: SQLiteJournal, run: RunRecord, policy: Policy?) async throws {
        let (name, arguments) = CommandCodec.encode(command)
        let id = try journal.submitCommand(name, arguments: arguments, at: now())
        let record = try await awaitAcknowledgement(of: id, in: journal)
        let state = try global.latestRun(in: journal)?.1 ?? .initial
        answer(record, id: id, state: state, policy: policy, offline: false)
    }

    /// Accepted: exit 0. Refused: the engine's why and the evidence, exit 1.
    func answer(_ record: CommandRecord, id: Int64, state: CutoverState, policy: Policy?, offline: Bool) {
        let accepted = record.accepted == true
        let detail = (record.outcome ?? (accepted ? "accepted" : "refused"))
            + (accepted && offline ? " (no coordinator was running; recorded by this process)" : "")
        var evidence: [String: String] = [:]
        if let policy {
            evidence = CutoverEngine(policy: policy, from: from, to: "").drainEvidence(state, now: now())
        }
        let sentence = Self.evidenceSentence(evidence)
        switch global.output {
        case .text:
            print("decommission: \(accepted ? "accepted" : "refused"): \(detail)")
            if !sentence.isEmpty { print("evidence: \(sentence)") }
        case .json:
            printJSON(["command": "decommission", "accepted": accepted, "detail": detail, "id": id,
                       "phase": state.phase.rawValue, "evidence": evidence])
        }
        if !accepted { Decommission.exit(withError: Exit.no) }
    }

    /// `open sessions 1; last request seen 2026-…; live weight 0; hold 0s of 60s; drain draining`
    static func evidenceSentence(_ evidence: [String: String]) -> String {
        var parts: [String] = []
        if let active = evidence["activeSessions"] { parts.append("open sessions \(active)") }
        if let last = evidence["lastRequestSeenAt"] {
            parts.append("last request seen: "
                         + (Int64(last).map { iso(Instant(millisecondsSinceEpoch: $0)) } ?? "none since the drain began"))
        }
        if let weight = evidence["liveWeight"] { parts.append("live weight \(weight)") }
        if let hold = evidence["holdMilliseconds"] { parts.append("hold \(hold) ms") }
        if let status = evidence["drainStatus"] { parts.append("drain \(status)") }
        if evidence["drain"] == "not started" { parts.append("drain not started") }
        return parts.joined(separator: "; ")
    }
}
